"""How a wait for a task proceeds, without doing any I/O (both clients drive it).

Server-sent events (``GET /tasks/{id}/events``) while the API offers them; polling
``GET /tasks/{id}`` when the events path is absent (404 or 405). When a stream breaks or ends
before a final status, one poll catches up at once (a final status reached meanwhile is not
missed), then the stream is reopened with ``Last-Event-ID`` after the server's ``retry``
time (or :attr:`FollowPlan.reconnect_s`), doubling while failures repeat. Consecutive
transport failures beyond :attr:`FollowPlan.max_failures` end the wait as unreachable.
"""

import httpx
from pydantic import ValidationError

from medvoice_client.errors import MedVoiceError, Unreachable
from medvoice_client.models import Task
from medvoice_client.sse import ServerSentEvent, SSEDecoder

STATUS_EVENT = "status"
STREAM_ABSENT = frozenset({404, 405})
STREAM_BUSY = 503
POLL_TRANSIENT = frozenset({502, 503, 504})  # e.g. a replica restarting behind a balancer
SSE_READ_TIMEOUT_S = 60.0  # the API sends a keep-alive comment every 15 s by default


class FollowPlan:
    """The state of one wait: the last task seen, the stream's last event id, failures."""

    def __init__(
        self,
        *,
        poll_interval_s: float = 1.0,
        reconnect_s: float = 1.0,
        max_pause_s: float = 15.0,
        max_failures: int = 6,
    ) -> None:
        self.poll_interval_s = poll_interval_s
        self.reconnect_s = reconnect_s
        self.max_pause_s = max_pause_s
        self.max_failures = max_failures
        self.decoder = SSEDecoder()  # keeps the last event id across connections
        self.use_sse = True
        self.failures = 0
        self.last: Task | None = None
        self._pause_s = 0.0

    @property
    def done(self) -> bool:
        """Whether the last task seen is completed or failed."""
        return self.last is not None and self.last.status.is_final

    def stream_headers(self) -> dict[str, str]:
        """Headers of the next events request (``Last-Event-ID`` once an event had an id)."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.decoder.last_event_id:
            headers["Last-Event-ID"] = self.decoder.last_event_id
        return headers

    def on_event(self, event: ServerSentEvent) -> Task | None:
        """A stream event: the task when it is news, else None (other event types too)."""
        if event.event != STATUS_EVENT:
            return None
        try:
            task = Task.model_validate_json(event.data)
        except ValidationError as exc:
            raise MedVoiceError("the API sent a status event that is not a task") from exc
        return self._news(task)

    def on_poll(self, task: Task) -> Task | None:
        """A polled task: itself when it is news, else None."""
        return self._news(task)

    def _news(self, task: Task) -> Task | None:
        self.failures = 0
        before, self.last = self.last, task
        same = before is not None and (before.status, before.attempt, before.updated_at) == (
            task.status,
            task.attempt,
            task.updated_at,
        )
        return None if same else task

    def stream_absent(self) -> None:
        """The API has no events endpoint: poll from now on."""
        self.use_sse = False
        self._pause_s = 0.0

    def stream_ended(self) -> None:
        """The stream broke or closed before a final status: catch up, then reconnect."""
        self.failures += 1
        self._pause_s = self._backoff_s()

    def stream_busy(self, retry_after_s: float | None) -> None:
        """The replica has too many streams (503): poll, then try again after Retry-After."""
        given = self.reconnect_s if retry_after_s is None else retry_after_s
        self._pause_s = min(given, 2 * self.max_pause_s)

    def transport_failed(self, exc: httpx.TransportError, where: str) -> None:
        """A poll could not reach the API; raises :class:`Unreachable` once too many have."""
        self.poll_failed(
            Unreachable(
                f"the MedVoice API at {where} could not be reached "
                f"({type(exc).__name__}: {exc}); gave up after {self.failures + 1} tries"
            )
        )

    def poll_failed(self, error: MedVoiceError) -> None:
        """A poll failed in a way that may pass (unreachable, 502-504): back off, or raise
        ``error`` once :attr:`max_failures` have failed in a row."""
        self.failures += 1
        if self.failures > self.max_failures:
            raise error
        self._pause_s = self._backoff_s()

    def pause_s(self) -> float:
        """How long to wait before the next step."""
        if not self.use_sse and self.failures == 0:
            return self.poll_interval_s
        return self._pause_s

    def _backoff_s(self) -> float:
        retry_ms = self.decoder.retry_ms
        base = retry_ms / 1000 if retry_ms is not None else self.reconnect_s
        return float(min(self.max_pause_s, base * 2 ** max(0, self.failures - 1)))
