"""Publishing a task: its ``queued`` status, then its AudioSubmitted event, one producer.

Order matters for the compacted ``task.status`` topic, which keeps the *last* record of a
task: ``queued`` is acknowledged before the work is published, so no worker status of the
task can precede it in its partition, and compaction keeps the final status.
"""

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from medvoice_common import cloudevents
from medvoice_common.kafka import aiokafka_security_kwargs
from medvoice_common.settings import CommonSettings
from schemas.events import AudioSubmitted, TaskStatusChanged
from schemas.status import TaskStatus

log = logging.getLogger(__name__)


class DispatchError(Exception):
    """Kafka did not acknowledge the task in time (or refused it)."""

    def __init__(self, message: str, *, maybe_published: bool) -> None:
        """``maybe_published``: the AudioSubmitted record was sent, so it may still land."""
        super().__init__(message)
        self.maybe_published = maybe_published


def queued_status(event: AudioSubmitted) -> TaskStatusChanged:
    """The task's first status, as the API writes it."""
    return TaskStatusChanged(
        task_id=event.task_id,
        user_id=event.user_id,
        file_id=event.file_id,
        status=TaskStatus.QUEUED,
        submitted_at=event.submitted_at,
    )


def _ce_headers(event: AudioSubmitted | TaskStatusChanged) -> list[tuple[str, bytes]]:
    return list(cloudevents.headers(event, cloudevents.API_SOURCE).items())


class Publisher:
    """The API's one Kafka producer (acks=all). Connects in ``start``, not before."""

    def __init__(self, settings: CommonSettings, timeout_s: float) -> None:
        """Configure the producer; ``timeout_s`` bounds every publish."""
        self.settings = settings
        self.timeout_s = timeout_s
        self.topics = settings.topics
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka.bootstrap,
            acks="all",
            # Not idempotent, on purpose: aiokafka's idempotent producer never expires a
            # batch and retries it until the broker takes it, so a publish that timed out
            # could land at any later time. Without it a batch is delivered or failed
            # within request_timeout_ms of its creation (plus one request in flight), which
            # the idempotency lease (3 publish timeouts) covers. A duplicate from a retry is
            # harmless: the same task id, and the worker skips a repeated task.
            enable_idempotence=False,
            request_timeout_ms=int(timeout_s * 1000),
            linger_ms=1,  # a tiny wait lets concurrent requests share a batch
            client_id="medvoice-api",
            **aiokafka_security_kwargs(settings.kafka.security),
        )

    async def start(self) -> None:
        """Connect to the cluster."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        await self._producer.stop()

    async def submit(
        self,
        event: AudioSubmitted,
        headers: list[tuple[str, bytes]] | None = None,
        *,
        with_queued: bool = True,
        on_queued: Callable[[TaskStatusChanged, bytes], None] | None = None,
    ) -> None:
        """Publish the task; return once Kafka acknowledged all of it, within the timeout.

        Args:
            event: the work.
            headers: its Kafka headers (trace context), after the CloudEvents ones.
            with_queued: first publish the ``queued`` status and wait for its ack (False:
                it is known to be on the topic already, from an earlier try of this task).
            on_queued: called with the ``queued`` status and its bytes once acknowledged.

        Raises:
            DispatchError: not acknowledged in time, or refused. A timeout stops the wait,
                not the send: with ``maybe_published`` the work may still be delivered.
        """
        key = str(event.task_id).encode()
        sent_work = False
        try:
            async with asyncio.timeout(self.timeout_s):
                if with_queued:
                    queued = queued_status(event)
                    value = queued.to_bytes()
                    await self._producer.send_and_wait(
                        self.topics.status, value, key=key, headers=_ce_headers(queued)
                    )
                    if on_queued is not None:
                        on_queued(queued, value)
                sent_work = True
                await self._producer.send_and_wait(
                    self.topics.submitted,
                    event.to_bytes(),
                    key=key,
                    headers=[*_ce_headers(event), *(headers or [])],
                )
        except (TimeoutError, KafkaError) as exc:
            log.warning(
                "publish failed",
                extra={
                    "task_id": str(event.task_id),
                    "error": type(exc).__name__,
                    "maybe_published": sent_work,
                },
            )
            raise DispatchError(
                "The task could not be confirmed as queued.", maybe_published=sent_work
            ) from exc

    async def tombstone(self, task_id: str) -> None:
        """Publish a null status for ``task_id`` (compaction then removes the task), acked."""
        async with asyncio.timeout(self.timeout_s):
            await self._producer.send_and_wait(self.topics.status, None, key=task_id.encode())

    async def connected(self) -> bool:
        """Whether the cluster answers a metadata request now."""
        try:
            async with asyncio.timeout(2.0):
                await self._producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError):
            return False
        return True
