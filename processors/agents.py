"""The agents: take AudioSubmitted (and its retries), run the pipeline, emit the results.

Every failure is handled here, inside the agent: Faust acks an event whose handler
raised (DESIGN.md §7), so nothing may escape ``_handle``.
"""

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import faust
from faust.streams import Stream
from faust.types import EventT, TableT
from pydantic import ValidationError

from processors import metrics, pipeline
from processors.errors import ErrorCode, TaskError
from processors.offsets import OffsetGuard
from processors.pipeline import PipelineContext
from processors.records import (
    ATTEMPT,
    ERROR_CAUSE,
    ERROR_CODE,
    ERROR_MESSAGE,
    NOT_BEFORE_MS,
    REPLAY,
    TRACEPARENT,
    Origin,
    backoff_s,
    carried_headers,
    header_dict,
    header_int,
    origin_headers,
    origin_of,
)
from processors.results import ready_event, summary_of
from schemas.events import AudioSubmitted, ErrorInfo, TaskStatusChanged, TranscriptSummary
from schemas.status import TaskStatus
from schemas.topics import Topics
from schemas.transcript import TranscriptDocument

log = logging.getLogger(__name__)
# The replay generation of the event a handler works on (each handler is its own task).
_replay: ContextVar[int] = ContextVar("medvoice_replay", default=0)
MISSING_OBJECT_ATTEMPTS = 3  # a missing recording is looked for again twice, then it fails


def _terminate_self() -> None:
    """Ask this process to shut down gracefully (Faust's SIGTERM handler)."""
    signal.raise_signal(signal.SIGTERM)


class TaskProcessor:
    """Handles AudioSubmitted events for one worker process."""

    def __init__(
        self,
        ctx: PipelineContext,
        table: TableT[str, Any],
        outputs: dict[str, faust.TopicT],
        topics: Topics,
        stop_worker: Callable[[], None] = _terminate_self,
        offsets: OffsetGuard | None = None,
    ) -> None:
        """Bind the processor to its context, status table and output topics.

        ``stop_worker`` asks the worker process to shut down gracefully; ``offsets`` is
        told which records are handed over and finished (it decides what is committed).
        """
        self.stop_worker = stop_worker
        self.offsets = offsets
        self.ctx = ctx
        self.table = table
        self.out = outputs
        self.topics = topics
        self.backend = ctx.backend.name
        metrics.initialise(self.backend)

    async def consume_submitted(self, stream: Stream[bytes]) -> AsyncIterator[None]:
        """Agent over ``audio.submitted``: one event at a time, in partition order.

        What is committed is decided by ``offsets`` (:mod:`processors.offsets`), from
        the events this agent finishes. Handling events concurrently in one stream
        (``take_events`` batches) was tried and lost tasks in a SIGKILL test; throughput
        scales with workers and partitions instead.
        """
        async for event in stream.events():
            await self._guarded(event)
            yield None

    async def consume_retry(self, stream: Stream[bytes]) -> AsyncIterator[None]:
        """Agent over the retry topic: waits until each record is due, then handles it.

        Waiting here holds back only the retry topic's partitions, never new work.
        """
        async for event in stream.events():
            due_ms = header_int(header_dict(event.message.headers), NOT_BEFORE_MS, 0)
            delay = due_ms / 1000 - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._guarded(event)
            yield None

    async def _guarded(self, event: EventT[bytes]) -> None:
        tp, offset = event.message.tp, event.message.offset
        if self.offsets is not None:
            await self.offsets.started(tp, offset)
        try:
            await self._handle(event)
        except asyncio.CancelledError:
            # Shutdown mid-task: keep one reference on the message so the stream's ack
            # cannot mark it done; its offset is not committed and the next owner of the
            # partition processes it again (idempotently).
            event.message.incref()
            raise
        except Exception:
            # A bug, or Kafka refusing our writes after its own retries: never drop the
            # event silently. Route it like a transient error (retry, then dead letter).
            log.exception("unexpected error handling a task")
            err = TaskError(
                ErrorCode.INTERNAL, "Internal error; the task will be retried.", transient=True
            )
            try:
                await self._retry_or_dead_letter(event, _parse(event.value), err)
            except Exception:
                log.critical("could not reroute a failed task; stopping this worker", exc_info=True)
                await self._hold_until_stopped(event)
        if self.offsets is not None:
            self.offsets.finished(tp, offset)

    async def _hold_until_stopped(self, event: EventT[bytes]) -> None:
        """Keep ``event`` unacknowledged and stop the worker, so it is delivered again.

        Going on to the next event is not safe: Faust would commit past one unacked event
        at the head of the acked ones. The worker stops (SIGTERM, the same path as a
        rollout), this handler waits until shutdown cancels it, and the orchestrator
        starts the worker again; the event's offset was never committed.
        """
        event.message.incref()
        self.stop_worker()
        await asyncio.Event().wait()

    async def _handle(self, event: EventT[bytes]) -> None:
        headers = header_dict(event.message.headers)
        attempt = header_int(headers, ATTEMPT, 0)
        replay = header_int(headers, REPLAY, 0)
        _replay.set(replay)
        sub = _parse(event.value)
        if sub is None:
            metrics.POISON.inc()
            await self._dead_letter(
                event,
                TaskError(ErrorCode.INVALID_EVENT, "The record is not a valid AudioSubmitted."),
                attempt,
            )
            return
        key = str(sub.task_id)
        record = self.table.get(key)
        if (
            record is not None
            and TaskStatus(record["status"]).is_final
            and record.get("replay", 0) >= replay
        ):
            metrics.TASKS_DUPLICATE.inc()
            log.info("duplicate delivery of a final task skipped", extra={"task_id": key})
            return
        if attempt == 0:
            metrics.TASKS_STARTED.labels(self.backend).inc()
        # The "processing" status is published while the work starts; it is acknowledged
        # before any later record of the task is sent, so their order holds.
        started = asyncio.ensure_future(self._set_status(sub, TaskStatus.PROCESSING, attempt))
        metrics.IN_FLIGHT.inc()
        try:
            doc, fresh = await pipeline.run(self.ctx, sub)
        except TaskError as err:
            await started
            if err.transient:
                await self._retry_or_dead_letter(event, sub, err)
            else:
                await self._fail(sub, err, attempt)
            return
        except BaseException:
            started.cancel()  # cancelled, or a bug: the caller reroutes the event
            raise
        finally:
            metrics.IN_FLIGHT.dec()
        await started
        if not fresh:
            metrics.TASKS_DUPLICATE.inc()
        await self._complete(sub, doc, attempt, headers.get(TRACEPARENT))

    async def _complete(
        self, sub: AudioSubmitted, doc: TranscriptDocument, attempt: int, traceparent: bytes | None
    ) -> None:
        uri = pipeline.transcript_uri(self.ctx, sub.user_id, str(sub.task_id))
        extra = {TRACEPARENT: traceparent} if traceparent else None
        ready = ready_event(sub, doc, uri).to_bytes()
        await asyncio.gather(  # two topics: no order between them to keep
            self._send("ready", str(sub.task_id), ready, extra),
            self._set_status(sub, TaskStatus.COMPLETED, attempt, transcript=summary_of(doc, uri)),
        )
        metrics.TASKS_COMPLETED.labels(self.backend).inc()
        self._observe_e2e(sub, "completed")

    async def _fail(self, sub: AudioSubmitted, err: TaskError, attempt: int) -> None:
        await self._set_status(
            sub, TaskStatus.FAILED, attempt, error=ErrorInfo(code=err.code, message=err.message)
        )
        metrics.TASKS_FAILED.labels(err.code).inc()
        self._observe_e2e(sub, "failed")
        log.info("task failed", extra={"task_id": str(sub.task_id), "code": str(err.code)})

    async def _retry_or_dead_letter(
        self, event: EventT[bytes], sub: AudioSubmitted | None, err: TaskError
    ) -> None:
        headers = header_dict(event.message.headers)
        attempt = header_int(headers, ATTEMPT, 0) + 1
        w = self.ctx.settings.worker
        missing = err.code is ErrorCode.AUDIO_MISSING
        limit = min(MISSING_OBJECT_ATTEMPTS, w.max_attempts) if missing else w.max_attempts
        if attempt < limit:
            delay = backoff_s(attempt, w.retry_base_s, w.retry_max_s)
            retry_headers = {
                **carried_headers(headers),
                **origin_headers(self._origin(event, headers)),
                ATTEMPT: str(attempt).encode(),
                NOT_BEFORE_MS: str(int((time.time() + delay) * 1000)).encode(),
                ERROR_CODE: str(err.code).encode(),
            }
            await self._send("retry", self._key(event, sub), event.value, retry_headers)
            metrics.RETRIES.labels(err.code).inc()
            log.info(
                "transient failure, retry scheduled",
                extra={
                    "task_id": self._key(event, sub),
                    "code": str(err.code),
                    "attempt": attempt,
                    "delay_s": round(delay, 2),
                },
            )
            return
        if missing and sub is not None:
            await self._fail(sub, err, attempt)  # still missing: permanent, nothing to replay
            return
        exhausted = TaskError(
            ErrorCode.RETRIES_EXHAUSTED,
            f"Gave up after {attempt} attempts: {err.message}",
        )
        await self._dead_letter(event, exhausted, attempt, cause=err.code)
        if sub is not None:
            await self._fail(sub, exhausted, attempt)

    async def _dead_letter(
        self, event: EventT[bytes], err: TaskError, attempt: int, cause: str | None = None
    ) -> None:
        headers = header_dict(event.message.headers)
        dlq_headers = {
            **carried_headers(headers),
            **origin_headers(self._origin(event, headers)),
            ERROR_CODE: str(err.code).encode(),
            ERROR_MESSAGE: err.message.encode(),
            ATTEMPT: str(attempt).encode(),
        }
        if cause:
            dlq_headers[ERROR_CAUSE] = cause.encode()
        await self._send("dlq", self._key(event, None), event.value, dlq_headers)
        metrics.DLQ_RECORDS.labels(err.code).inc()
        log.warning("record dead-lettered", extra={"code": str(err.code), "attempt": attempt})

    async def _set_status(
        self,
        sub: AudioSubmitted,
        status: TaskStatus,
        attempt: int,
        *,
        error: ErrorInfo | None = None,
        transcript: TranscriptSummary | None = None,
    ) -> None:
        change = TaskStatusChanged(
            task_id=sub.task_id,
            user_id=sub.user_id,
            file_id=sub.file_id,
            status=status,
            submitted_at=sub.submitted_at,
            attempt=attempt,
            replay=_replay.get(),
            error=error,
            transcript=transcript,
        )
        await self._send("status", str(sub.task_id), change.to_bytes())
        self.table[str(sub.task_id)] = {
            "status": status.value,
            "attempt": attempt,
            "replay": change.replay,
        }

    async def _send(
        self, name: str, key: str, value: bytes, headers: dict[str, bytes] | None = None
    ) -> None:
        """Publish and wait for the broker's acknowledgement (acks=all)."""
        fut = await self.out[name].send(key=key.encode(), value=value, headers=headers)
        await fut

    def _origin(self, event: EventT[bytes], headers: dict[str, bytes]) -> Origin:
        msg = event.message
        return origin_of(headers, msg.topic, msg.partition, msg.offset)

    @staticmethod
    def _key(event: EventT[bytes], sub: AudioSubmitted | None) -> str:
        if sub is not None:
            return str(sub.task_id)
        key: Any = event.message.key
        return key.decode(errors="replace") if isinstance(key, bytes) else str(key or "")

    @staticmethod
    def _observe_e2e(sub: AudioSubmitted, outcome: metrics.Outcome) -> None:
        elapsed = (datetime.now(UTC) - sub.submitted_at).total_seconds()
        metrics.E2E_SECONDS.labels(outcome).observe(max(0.0, elapsed))


def _parse(value: Any) -> AudioSubmitted | None:
    """The event's AudioSubmitted, or None when the bytes are not a valid one."""
    try:
        return AudioSubmitted.model_validate_json(value)
    except ValidationError:
        return None
