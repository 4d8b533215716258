"""The agents: take AudioSubmitted (and its retries), run the pipeline, emit the results.

Every failure is handled in ``_guarded``: nothing escapes to Faust. What one delivery of a
record leads to is decided here, against the task's entry in the status table:

- a record that is not a valid AudioSubmitted (its value, key or headers) is poison: it goes
  to the dead-letter topic with its original key and value bytes (``invalid_event``);
- a task whose entry is final for this replay generation (or a later one) is a duplicate
  and is skipped, except that a completed task whose TranscriptReady was never acknowledged
  gets it sent again;
- a task whose deliveries started ``max_deliveries`` times without reaching an outcome (the
  worker died in it) is dead-lettered and fails with ``worker_crashed``;
- a transient error is retried with backoff, then dead-lettered (``retries_exhausted``); a
  permanent one fails the task;
- completion sends TranscriptReady, waits for its acknowledgement, then the completed status.

What is committed is decided by :mod:`processors.offsets`: only records that reached one of
these outcomes. Work cut short by a rebalance or a shutdown is not finished, so it is
delivered again (the pipeline is idempotent).

Each agent reads its stream in partition order and hands every record to a handler task of
its own, at most ``MEDVOICE_WORKER__MAX_IN_FLIGHT`` at once (``_consume``); records of one
task are handled one after another (:class:`processors.inflight.KeyLocks`).
"""

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

import faust
from faust.streams import Stream
from faust.types import EventT, TableT
from pydantic import ValidationError

from medvoice_common import cloudevents
from processors import metrics, pipeline
from processors.errors import ErrorCode, TaskError
from processors.inflight import KeyLocks
from processors.lifecycle import HardExit, Liveness
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
    MalformedRecord,
    Origin,
    backoff_s,
    carried_headers,
    header_dict,
    header_int,
    origin_headers,
    origin_of,
    parse_headers,
    parse_key,
)
from processors.results import ready_event, summary_of
from schemas.events import AudioSubmitted, ErrorInfo, TaskStatusChanged, TranscriptSummary
from schemas.status import TaskStatus
from schemas.topics import Topics
from schemas.transcript import TranscriptDocument

log = logging.getLogger(__name__)
MISSING_OBJECT_ATTEMPTS = 3  # a missing recording is looked for again twice, then it fails
RunPipeline = Callable[
    [PipelineContext, AudioSubmitted], Awaitable[tuple[TranscriptDocument, bool]]
]


def _terminate_self() -> None:
    """Ask this process to shut down gracefully (Faust's SIGTERM handler)."""
    signal.raise_signal(signal.SIGTERM)


@dataclass(frozen=True)
class Delivery:
    """One well-formed record of a task, as read from ``audio.submitted`` or the retry topic."""

    event: EventT[bytes]
    headers: dict[str, bytes]
    sub: AudioSubmitted
    attempt: int
    """Transient failures so far (0 on ``audio.submitted``)."""
    replay: int
    """The replay generation (``medvoice.replay``)."""

    @property
    def key(self) -> str:
        """The task id: the record's key and the status table's key."""
        return str(self.sub.task_id)


def read_delivery(event: EventT[bytes]) -> Delivery:
    """The task a record carries.

    Raises:
        MalformedRecord: its headers, key or value are not what the pipeline writes.
    """
    headers = parse_headers(event.message.headers)
    key = parse_key(event.message.key)
    sub = _parse(event.value)
    if sub is None:
        raise MalformedRecord("the value is not a valid AudioSubmitted")
    if key != str(sub.task_id):
        raise MalformedRecord("the key is not the event's task_id")
    return Delivery(
        event, headers, sub, header_int(headers, ATTEMPT, 0), header_int(headers, REPLAY, 0)
    )


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
        *,
        liveness: Liveness | None = None,
        hard_exit: HardExit | None = None,
        flush: Callable[[str], Awaitable[None]] | None = None,
        run: RunPipeline = pipeline.run,
    ) -> None:
        """Bind the processor to its context, status table and output topics.

        ``stop_worker`` asks the worker process to shut down gracefully; ``offsets`` is
        told which records are handed over and finished (it decides what is committed);
        ``liveness`` is what ``/healthz`` reports; ``hard_exit`` bounds a stop by the grace
        period; ``flush(key)`` waits until the table's last write of ``key`` is on the
        broker; ``run`` is the pipeline.
        """
        self.stop_worker = stop_worker
        self.offsets = offsets
        self.ctx = ctx
        self.table = table
        self.out = outputs
        self.topics = topics
        self.backend = ctx.backend.name
        self.liveness = liveness or Liveness()
        if hard_exit is None:
            hard_exit = HardExit(ctx.settings.worker.shutdown_grace_s)
        self.hard_exit = hard_exit
        self.drain_s = self.hard_exit.grace_s / 2
        self.flush = flush
        self.run = run
        self._loop: asyncio.AbstractEventLoop | None = None
        self.max_in_flight = ctx.settings.worker.max_in_flight
        self._in_flight: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[Any]] = set()  # in a retry's backoff sleep
        self._keys = KeyLocks()  # shared by both agents: one task's records one at a time
        self._interrupts = 0  # rebalances and stops so far; a handler begun before one waits
        self._stopping = False
        metrics.initialise(self.backend)

    async def consume_submitted(self, stream: Stream[bytes]) -> AsyncIterator[None]:
        """Agent over ``audio.submitted``: up to ``max_in_flight`` records at once."""
        async for _ in self._consume(stream, retry=False):
            yield None

    async def consume_retry(self, stream: Stream[bytes]) -> AsyncIterator[None]:
        """Agent over the retry topic: each record waits until it is due, then is handled.

        Waiting here holds back only the retry topic's partitions, never new work; a
        rebalance or a shutdown ends the wait at once (the record is read again).
        """
        async for _ in self._consume(stream, retry=True):
            yield None

    async def _consume(self, stream: Stream[bytes], *, retry: bool) -> AsyncIterator[None]:
        """Hand each record of ``stream``, in order, to a handler task of its own.

        A slot is taken before the next record is read, so at most ``max_in_flight``
        handlers run and no record waits in this loop for one (with 1 it is the
        one-at-a-time loop). Each record is held (``incref``) until its handler ends, so
        Faust's rebalance and shutdown wait for it (bounded by :meth:`_interrupt`); the
        stream's own acknowledgement decides nothing: the offset guard commits only up to
        the first record whose handler has not reached an outcome (Faust's commits past an
        unfinished head record and its acks of skipped records cannot lose a task).
        """
        self._loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.max_in_flight)
        handlers: set[asyncio.Task[None]] = set()
        try:
            await slots.acquire()
            async for event in stream.events():
                if not self._stopping:  # else left unfinished: the next owner reads it
                    await self._started(event)
                    event.message.incref()  # released by the handler, however it ends
                    handler = asyncio.ensure_future(
                        self._hold(event, retry, slots, self._interrupts)
                    )
                    handlers.add(handler)
                    handler.add_done_callback(handlers.discard)
                    await slots.acquire()  # room for the next record before reading it
                yield None
        finally:
            for handler in list(handlers):
                handler.cancel()  # the agent itself stops: unfinished, read again

    async def _hold(
        self, event: EventT[bytes], retry: bool, slots: asyncio.Semaphore, interrupts: int
    ) -> None:
        """One record's handler: after the task's earlier records, unless interrupted first."""
        try:
            async with self._keys.hold(_lock_key(event)):
                if self._stopping or self._interrupts != interrupts:
                    return  # a rebalance or a stop began while it waited: read again
                await self._handle_record(event, retry=retry)
        finally:
            event.ack()  # only Faust's wait for in-flight records; commits are the guard's
            slots.release()

    # -- stopping ------------------------------------------------------------------------

    def on_rebalance(self) -> None:
        """A rebalance starts (called from the consumer's thread): bound the in-flight work."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._interrupt, "rebalance")

    def begin_shutdown(self) -> None:
        """The worker stops: take no new event, bound the in-flight work and the whole stop."""
        self._stopping = True
        self.hard_exit.arm("shutdown")
        self._interrupt("shutdown")

    def _interrupt(self, why: str) -> None:
        self._interrupts += 1
        for waiting in list(self._waiting):
            waiting.cancel()  # a retry's backoff: nothing to lose
        busy = [w for w in self._in_flight if not w.done() and w not in self._waiting]
        if not busy:
            return
        log.info(
            "in-flight tasks may finish before they are cancelled",
            extra={"why": why, "tasks": len(busy)},
        )
        loop = asyncio.get_running_loop()
        loop.call_later(self.drain_s, self._cancel, busy, why)

    @staticmethod
    def _cancel(works: list[asyncio.Task[None]], why: str) -> None:
        for work in works:
            if not work.done():
                log.warning(
                    "in-flight task cancelled; it will be delivered again", extra={"why": why}
                )
                work.cancel()

    # -- one record ----------------------------------------------------------------------

    async def _guarded(self, event: EventT[bytes], *, retry: bool) -> None:
        """One record from hand-over to outcome, as the agent does it with one in flight."""
        if self._stopping:
            return  # left unfinished, so uncommitted: the partition's next owner reads it
        await self._started(event)
        await self._handle_record(event, retry=retry)

    async def _started(self, event: EventT[bytes]) -> None:
        """Tell the offset guard the stream handed ``event`` over (in partition order)."""
        if self.offsets is not None:
            await self.offsets.started(event.message.tp, event.message.offset)

    async def _handle_record(self, event: EventT[bytes], *, retry: bool) -> None:
        """Work on ``event`` to its outcome; the guard learns it is finished only then."""
        tp, offset = event.message.tp, event.message.offset
        work = asyncio.ensure_future(self._work_on(event, retry=retry))
        self._in_flight.add(work)
        try:
            finished = await self._outcome(event, work)
        finally:
            self._in_flight.discard(work)
        if finished and self.offsets is not None:
            self.offsets.finished(tp, offset)

    async def _outcome(self, event: EventT[bytes], work: "asyncio.Task[None]") -> bool:
        """Await ``work``; whether the record reached an outcome (else it is read again)."""
        try:
            await work
        except asyncio.CancelledError:
            agent = asyncio.current_task()
            if agent is not None and agent.cancelling():
                raise  # the agent itself is stopped
            return False  # interrupted by a rebalance or a shutdown
        except Exception:
            # A bug, or Kafka refusing our writes after its own retries: never drop the
            # event silently. Route it like a transient error (retry, then dead letter).
            log.exception("unexpected error handling a task")
            err = TaskError(
                ErrorCode.INTERNAL, "Internal error; the task will be retried.", transient=True
            )
            try:
                await self._retry_or_dead_letter(event, _read_or_none(event), err)
            except Exception:
                log.critical("could not reroute a failed task; stopping this worker", exc_info=True)
                self._stop_stuck_worker()
                return False
        return True

    def _stop_stuck_worker(self) -> None:
        """The record can neither finish nor be rerouted: stop, so it is delivered again.

        Going on to the next records would not lose it (the commit never passes it) but
        would hold every later commit of its partition. ``/healthz`` fails from now on; the
        graceful stop is bounded by the grace period, then the process exits hard.
        """
        self.liveness.fail("a record could neither be processed nor rerouted")
        self._stopping = True
        self.hard_exit.arm("cannot make progress")
        self.stop_worker()

    async def _work_on(self, event: EventT[bytes], *, retry: bool) -> None:
        if retry:
            due_ms = header_int(header_dict(event.message.headers), NOT_BEFORE_MS, 0)
            delay = due_ms / 1000 - time.time()
            if delay > 0:
                me = asyncio.current_task()
                if me is not None:
                    self._waiting.add(me)
                try:
                    await asyncio.sleep(delay)
                finally:
                    if me is not None:
                        self._waiting.discard(me)
        await self._handle(event)

    async def _handle(self, event: EventT[bytes]) -> None:
        received = time.perf_counter()
        try:
            d = read_delivery(event)
        except MalformedRecord as exc:
            metrics.POISON.inc()
            attempt = header_int(header_dict(event.message.headers), ATTEMPT, 0)
            reason = TaskError(ErrorCode.INVALID_EVENT, f"The record is malformed: {exc}.")
            await self._dead_letter(event, None, reason, attempt)
            return
        entry = self.table.get(d.key)
        if _settled(entry, d):
            if entry["status"] == TaskStatus.COMPLETED and not entry.get("transcript_published"):
                await self._publish_missing_ready(d, entry)
                return
            metrics.TASKS_DUPLICATE.inc()
            log.info("duplicate delivery of a final task skipped", extra={"task_id": d.key})
            return
        unfinished = _unfinished(entry, d)
        if unfinished >= self.ctx.settings.worker.max_deliveries:
            await self._crashed(d, unfinished)
            return
        if d.attempt == 0:
            metrics.TASKS_STARTED.labels(self.backend).inc()
        # Counted before the work starts and on the broker before it goes on: a delivery
        # that kills the worker is still counted.
        self._mark(d, TaskStatus.PROCESSING, unfinished=unfinished + 1)
        if self.flush is not None:
            await self.flush(d.key)
        _log_start(d, time.perf_counter() - received)
        await self._process(d, unfinished)

    async def _process(self, d: Delivery, unfinished: int) -> None:
        # The "processing" status is published while the work starts; it is acknowledged
        # before any later record of the task is sent, so their order holds.
        started = asyncio.ensure_future(self._send_status(d, TaskStatus.PROCESSING, d.attempt))
        metrics.IN_FLIGHT.inc()
        try:
            doc, fresh = await self.run(self.ctx, d.sub)
        except TaskError as err:
            await started
            if err.transient:
                await self._retry_or_dead_letter(d.event, d, err)
            else:
                await self._fail(d, err, d.attempt)
            return
        except asyncio.CancelledError:
            started.cancel()
            self._mark(d, TaskStatus.PROCESSING, unfinished=unfinished)  # interrupted: no crash
            raise
        except BaseException:
            started.cancel()  # a bug: the caller reroutes the event
            raise
        finally:
            metrics.IN_FLIGHT.dec()
        await started
        if not fresh:
            metrics.TASKS_DUPLICATE.inc()
        await self._complete(d, doc)

    # -- outcomes ------------------------------------------------------------------------

    async def _complete(self, d: Delivery, doc: TranscriptDocument) -> None:
        uri = await self._send_ready(d, doc)
        # Only after TranscriptReady is acknowledged: a completed entry means it is out.
        summary = summary_of(doc, uri)
        await self._send_status(d, TaskStatus.COMPLETED, d.attempt, transcript=summary)
        self._mark(d, TaskStatus.COMPLETED, transcript_published=True)
        metrics.TASKS_COMPLETED.labels(self.backend).inc()
        self._observe_e2e(d.sub, "completed")

    async def _publish_missing_ready(self, d: Delivery, entry: dict[str, Any]) -> None:
        """A completed task whose TranscriptReady was never acknowledged: send it now."""
        try:
            doc, _ = await self.run(self.ctx, d.sub)  # the stored document
        except TaskError as err:  # the task stays completed whatever happens here
            if err.transient:
                await self._retry_or_dead_letter(d.event, d, err)
            else:
                await self._dead_letter(d.event, d, err, d.attempt)
            return
        await self._send_ready(d, doc)
        self.table[d.key] = {**entry, "transcript_published": True}
        log.info("TranscriptReady of a completed task sent again", extra={"task_id": d.key})

    async def _send_ready(self, d: Delivery, doc: TranscriptDocument) -> str:
        uri = pipeline.transcript_uri(self.ctx, d.sub.user_id, d.key)
        ready = ready_event(d.sub, doc, uri)
        headers = cloudevents.headers(ready, cloudevents.WORKER_SOURCE)
        trace = d.headers.get(TRACEPARENT)
        if trace:
            headers[TRACEPARENT] = trace
        await self._send("ready", d.key.encode(), ready.to_bytes(), headers)
        return uri

    async def _fail(self, d: Delivery, err: TaskError, attempt: int) -> None:
        error = ErrorInfo(code=err.code, message=err.message)
        await self._send_status(d, TaskStatus.FAILED, attempt, error=error)
        self._mark(d, TaskStatus.FAILED, attempt=attempt)
        metrics.TASKS_FAILED.labels(err.code).inc()
        self._observe_e2e(d.sub, "failed")
        log.info("task failed", extra={"task_id": d.key, "code": str(err.code)})

    async def _crashed(self, d: Delivery, deliveries: int) -> None:
        err = TaskError(
            ErrorCode.WORKER_CRASHED,
            f"Processing stopped without an outcome {deliveries} times; the task is set aside.",
        )
        log.error("task dead-lettered after repeated worker crashes", extra={"task_id": d.key})
        await self._dead_letter(d.event, d, err, d.attempt)
        await self._fail(d, err, d.attempt)

    async def _retry_or_dead_letter(
        self,
        event: EventT[bytes],
        d: Delivery | None,
        err: TaskError,
    ) -> None:
        """Schedule a retry, or dead-letter the record once the attempts are spent.

        A task already final in this generation (a completed one whose TranscriptReady is
        being sent again) keeps its status: only the record is retried or dead-lettered.
        """
        final_status = d is not None and not _settled(self.table.get(d.key), d)
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
            await self._send("retry", _key(event, d), event.value, retry_headers)
            if d is not None and final_status:
                self._mark(d, TaskStatus.PROCESSING)  # this delivery reached its outcome
            metrics.RETRIES.labels(err.code).inc()
            log.info(
                "transient failure, retry scheduled",
                extra={
                    "task_id": d.key if d else None,
                    "code": str(err.code),
                    "attempt": attempt,
                    "delay_s": round(delay, 2),
                },
            )
            return
        if missing and d is not None and final_status:
            await self._fail(d, err, attempt)  # still missing: permanent, nothing to replay
            return
        exhausted = TaskError(
            ErrorCode.RETRIES_EXHAUSTED,
            f"Gave up after {attempt} attempts: {err.message}",
        )
        await self._dead_letter(event, d, exhausted, attempt, cause=err.code)
        if d is not None and final_status:
            await self._fail(d, exhausted, attempt)

    async def _dead_letter(
        self,
        event: EventT[bytes],
        d: Delivery | None,
        err: TaskError,
        attempt: int,
        cause: str | None = None,
    ) -> None:
        """Send the record to the DLQ: its original key and value, and why."""
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
        await self._send("dlq", _key(event, d), event.value, dlq_headers)
        metrics.DLQ_RECORDS.labels(err.code).inc()
        log.warning("record dead-lettered", extra={"code": str(err.code), "attempt": attempt})

    # -- records out ---------------------------------------------------------------------

    def _mark(self, d: Delivery, status: TaskStatus, **extra: Any) -> None:
        """Write the task's table entry (``unfinished``: deliveries begun, no outcome yet)."""
        self.table[d.key] = {
            "status": status.value,
            "attempt": d.attempt,
            "replay": d.replay,
            **extra,
        }

    async def _send_status(
        self,
        d: Delivery,
        status: TaskStatus,
        attempt: int,
        *,
        error: ErrorInfo | None = None,
        transcript: TranscriptSummary | None = None,
    ) -> None:
        change = TaskStatusChanged(
            task_id=d.sub.task_id,
            user_id=d.sub.user_id,
            file_id=d.sub.file_id,
            status=status,
            submitted_at=d.sub.submitted_at,
            attempt=attempt,
            replay=d.replay,
            error=error,
            transcript=transcript,
            callback_url=d.sub.callback_url,  # the submission's own: processors.webhooks
        )
        headers = cloudevents.headers(change, cloudevents.WORKER_SOURCE)
        await self._send("status", d.key.encode(), change.to_bytes(), headers)

    async def _send(
        self,
        name: str,
        key: bytes | None,
        value: bytes | None,
        headers: dict[str, bytes] | None = None,
    ) -> None:
        """Publish and wait for the broker's acknowledgement (acks=all)."""
        fut = await self.out[name].send(key=key, value=value, headers=headers)
        await fut

    def _origin(self, event: EventT[bytes], headers: dict[str, bytes]) -> Origin:
        msg = event.message
        return origin_of(headers, msg.topic, msg.partition, msg.offset)

    @staticmethod
    def _observe_e2e(sub: AudioSubmitted, outcome: metrics.Outcome) -> None:
        elapsed = (datetime.now(UTC) - sub.submitted_at).total_seconds()
        metrics.E2E_SECONDS.labels(outcome).observe(max(0.0, elapsed))


def _log_start(d: Delivery, checks_s: float) -> None:
    """Log the start of a task's work: how long since it was submitted, and since it was read.

    ``since_submit_s`` compares the API's clock (``submitted_at``) with this worker's;
    ``checks_s`` is this worker's own time from reading the record to the work (parsing,
    the status table and the delivery count's round trip to the broker).
    """
    since = (datetime.now(UTC) - d.sub.submitted_at).total_seconds()
    log.info(
        "work started",
        extra={
            "task_id": d.key,
            "attempt": d.attempt,
            "since_submit_s": round(since, 4),
            "checks_s": round(checks_s, 4),
        },
    )


def _lock_key(event: EventT[bytes]) -> bytes | None:
    """The record's key bytes (the task id), which orders its handlers; None without one."""
    key: Any = event.message.key
    return bytes(key) if isinstance(key, bytes | bytearray) else None


def _key(event: EventT[bytes], d: Delivery | None) -> bytes | None:
    """The key of a record sent on: the task id, or a poison record's own key bytes."""
    if d is not None:
        return d.key.encode()
    key: Any = event.message.key
    return bytes(key) if isinstance(key, bytes | bytearray) else None


def _is_final(entry: Any) -> bool:
    return isinstance(entry, dict) and TaskStatus(entry["status"]).is_final


def _settled(entry: Any, d: Delivery) -> TypeGuard[dict[str, Any]]:
    """Whether the task's entry is final for the delivery's replay generation (or later)."""
    return _is_final(entry) and int(entry.get("replay", 0)) >= d.replay


def _unfinished(entry: dict[str, Any] | None, d: Delivery) -> int:
    """Deliveries of this attempt that began and never reached an outcome."""
    if entry is None or _is_final(entry):
        return 0
    if entry.get("attempt") != d.attempt or entry.get("replay", 0) != d.replay:
        return 0
    return int(entry.get("unfinished", 0))


def _read_or_none(event: EventT[bytes]) -> Delivery | None:
    try:
        return read_delivery(event)
    except MalformedRecord:
        return None


def _parse(value: Any) -> AudioSubmitted | None:
    """The event's AudioSubmitted, or None when the bytes are not a valid one."""
    if not isinstance(value, bytes | bytearray | str):
        return None
    try:
        return AudioSubmitted.model_validate_json(value)
    except ValidationError:
        return None
