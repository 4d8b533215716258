"""A TaskProcessor with an in-memory status table, recording output topics and a scripted
pipeline: the worker's decisions without a broker (the broker-level effects are what the
integration tests check)."""

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from aiokafka.errors import KafkaTimeoutError
from faust.types import TP

from processors.agents import TaskProcessor
from processors.lifecycle import Liveness
from processors.pipeline import PipelineContext
from processors.settings import WorkerOptions, WorkerSettings
from schemas.events import AudioSubmitted
from schemas.ids import AudioExtension
from schemas.topics import Topics
from schemas.transcript import TranscriptDocument
from tests.fixtures.documents import transcript_document

SUBMITTED = "t.audio.submitted"
RETRY = "t.audio.submitted.retry"


@dataclass
class Sent:
    """One record a processor published."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    def json(self) -> dict[str, Any]:
        assert self.value is not None
        value: dict[str, Any] = json.loads(self.value)
        return value


@dataclass
class RecordingTopic:
    """An output topic: records what is sent; the next ``fail`` sends are not acknowledged."""

    sent: list[Sent] = field(default_factory=list)
    fail: int = 0

    async def send(
        self, *, key: bytes | None, value: bytes | None, headers: dict[str, bytes] | None
    ) -> "asyncio.Future[None]":
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail:
            self.fail -= 1
            fut.set_exception(KafkaTimeoutError())
        else:
            self.sent.append(Sent(key, value, dict(headers or {})))
            fut.set_result(None)
        return fut


@dataclass
class RecordingOffsets:
    """Stands in for the offset guard: what was handed over and what finished."""

    started_at: list[int] = field(default_factory=list)
    finished_at: list[int] = field(default_factory=list)

    async def started(self, tp: TP, offset: int) -> None:
        self.started_at.append(offset)

    def finished(self, tp: TP, offset: int) -> None:
        self.finished_at.append(offset)


class RecordingHardExit:
    """Records that the hard-exit countdown was armed (a real one would end pytest)."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.armed_for: list[str] = []

    @property
    def armed(self) -> bool:
        return bool(self.armed_for)

    def arm(self, why: str) -> None:
        self.armed_for.append(why)


Run = Callable[[PipelineContext, AudioSubmitted], Awaitable[tuple[TranscriptDocument, bool]]]


def document(sub: AudioSubmitted, text: str = "Blood pressure is normal.") -> TranscriptDocument:
    return transcript_document(sub.task_id, sub.user_id, text, duration_s=2.0)


async def transcribes(ctx: PipelineContext, sub: AudioSubmitted) -> tuple[TranscriptDocument, bool]:
    return document(sub), True


def task(user_id: str = "dr_unit") -> AudioSubmitted:
    file_id = uuid.uuid4().hex[:8]
    return AudioSubmitted(
        task_id=uuid.uuid4(),
        user_id=user_id,
        file_id=file_id,
        file_extension=AudioExtension("m4a"),
        object_key=f"audio/{user_id}/{file_id}.m4a",
    )


@dataclass
class FakeMessage:
    """A Faust message: its coordinates and its reference count (1: the stream's)."""

    key: Any
    headers: list[tuple[str, bytes | None]]
    tp: TP
    topic: str
    partition: int
    offset: int
    refcount: int = 1
    acked: bool = False

    def incref(self) -> None:
        self.refcount += 1


@dataclass
class FakeEvent:
    """A Faust event as the agents see it (raw key and value bytes)."""

    message: FakeMessage
    value: bytes | None

    def ack(self) -> bool:
        """Drop one reference, as Faust's ``Event.ack``; True when it was the last one."""
        assert self.message.refcount > 0, "acked more often than held"
        self.message.refcount -= 1
        if self.message.refcount == 0:
            self.message.acked = True
            return True
        return False


def event(
    value: bytes | None,
    *,
    key: Any = None,
    headers: list[tuple[str, bytes | None]] | None = None,
    offset: int = 0,
    topic: str = SUBMITTED,
) -> Any:
    """A Faust event as the agents see it (raw key and value bytes)."""
    message = FakeMessage(key, headers or [], TP(topic, 0), topic, 0, offset)
    return FakeEvent(message, value)


class FakeStream:
    """A Faust stream over ``events``: each is acked once the agent's loop body is done.

    ``read`` counts the events handed over so far (what the agent has taken).
    """

    def __init__(self, events: list[Any]) -> None:
        self.pending = list(events)
        self.read = 0
        self.more = asyncio.Event()  # set when events are appended later

    def add(self, *events: Any) -> None:
        self.pending.extend(events)
        self.more.set()

    async def events(self) -> Any:
        while True:
            while not self.pending:
                self.more.clear()
                await self.more.wait()
            ev = self.pending.pop(0)
            self.read += 1
            try:
                yield ev
            finally:
                ev.ack()  # the stream's own acknowledgement, after the loop body


def submitted_event(sub: AudioSubmitted, **kwargs: Any) -> Any:
    kwargs.setdefault("key", str(sub.task_id).encode())
    return event(sub.to_bytes(), **kwargs)


class Harness:
    """One processor and everything it writes to."""

    def __init__(self, run: Run = transcribes, **worker: Any) -> None:
        options = WorkerOptions(**{"max_attempts": 3, "retry_base_s": 0.01, **worker})
        settings = WorkerSettings(worker=options)
        self.ctx = cast(
            PipelineContext,
            SimpleNamespace(settings=settings, backend=SimpleNamespace(name="unit")),
        )
        self.table: dict[str, Any] = {}
        self.topics = {name: RecordingTopic() for name in ("ready", "status", "retry", "dlq")}
        self.offsets = RecordingOffsets()
        self.liveness = Liveness()
        self.hard_exit = RecordingHardExit(options.shutdown_grace_s)
        self.stops = 0
        self.flushes = 0
        self.table_at_flush: list[dict[str, Any]] = []
        self.processor = TaskProcessor(
            self.ctx,
            cast(Any, self.table),
            cast(Any, self.topics),
            Topics.with_prefix("t."),
            stop_worker=self._stop,
            offsets=cast(Any, self.offsets),
            liveness=self.liveness,
            hard_exit=cast(Any, self.hard_exit),
            flush=self._flush,
            run=run,
        )

    def _stop(self) -> None:
        self.stops += 1

    async def _flush(self, key: str) -> None:
        self.flushes += 1
        self.table_at_flush.append({k: dict(v) for k, v in self.table.items()})

    async def deliver(self, ev: Any, *, retry: bool = False) -> None:
        """Hand one record to the processor as its agent would."""
        await self.processor._guarded(ev, retry=retry)

    async def deliver_retries(self) -> None:
        """Deliver what was sent to the retry topic (and what those retries send), in order."""
        done = 0
        while done < len(self.topics["retry"].sent):
            rec = self.topics["retry"].sent[done]
            done += 1
            headers: list[tuple[str, bytes | None]] = list(rec.headers.items())
            await self.deliver(
                event(rec.value, key=rec.key, headers=headers, offset=done, topic=RETRY),
                retry=True,
            )

    def statuses(self, sub: AudioSubmitted) -> list[str]:
        return [
            r.json()["status"]
            for r in self.topics["status"].sent
            if r.json()["task_id"] == str(sub.task_id)
        ]

    def ready_for(self, sub: AudioSubmitted) -> list[Sent]:
        return [r for r in self.topics["ready"].sent if r.json()["task_id"] == str(sub.task_id)]
