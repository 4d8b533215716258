"""Many records in flight per worker: the agent loop over a stream (``TaskProcessor._consume``)
with a scripted pipeline that holds each task until the test lets it go.

What must hold: at most ``max_in_flight`` handlers at once, and the next record is not even
read while all slots are busy; a record reaches the offset guard as finished only when its
handler reached an outcome; every record the agent took is acknowledged to Faust exactly
once more than the stream's own acknowledgement (held, then released); one task's records
never run together; a rebalance or the agent's own stop hands unfinished work back.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from processors.inflight import KeyLocks
from processors.pipeline import PipelineContext
from schemas.events import AudioSubmitted
from schemas.transcript import TranscriptDocument
from tests.unit.processors.harness import FakeStream, Harness, document, submitted_event, task


class Gated:
    """A pipeline whose runs wait until released; records the peak of runs at once."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.started: list[str] = []
        self.peak = 0
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, sub: AudioSubmitted) -> asyncio.Event:
        return self.gates.setdefault(str(sub.task_id), asyncio.Event())

    async def __call__(
        self, ctx: PipelineContext, sub: AudioSubmitted
    ) -> tuple[TranscriptDocument, bool]:
        key = str(sub.task_id)
        self.started.append(key)
        self.running.append(key)
        self.peak = max(self.peak, len(self.running))
        try:
            await self.gate(sub).wait()
        finally:
            self.running.remove(key)
        return document(sub), True


async def until(cond: Any, what: str) -> None:
    """Let the loop run until ``cond()`` holds (the processor's tasks make progress)."""
    for _ in range(5000):  # at most about 5 s: the drain in the rebalance test takes 50 ms
        if cond():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"not reached: {what}")


@contextlib.asynccontextmanager
async def agent(h: Harness, stream: FakeStream) -> AsyncIterator[asyncio.Task[None]]:
    async def drive() -> None:
        async for _ in h.processor.consume_submitted(stream):  # type: ignore[arg-type]
            pass

    task_ = asyncio.ensure_future(drive())
    try:
        yield task_
    finally:
        task_.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task_


async def test_at_most_max_in_flight_run_at_once_and_the_next_record_waits_unread() -> None:
    run = Gated()
    h = Harness(run, max_in_flight=3)
    subs = [task() for _ in range(5)]
    events = [submitted_event(s, offset=i) for i, s in enumerate(subs)]
    stream = FakeStream(events)
    async with agent(h, stream):
        await until(lambda: len(run.running) == 3, "three tasks run")
        await asyncio.sleep(0.01)  # give a fourth every chance to start (it must not)
        assert run.peak == 3
        assert stream.read == 3, "no record is read while every slot is busy"
        assert h.offsets.finished_at == []
        run.gate(subs[1]).set()
        await until(lambda: h.offsets.finished_at == [1], "the second record finished")
        await until(lambda: len(run.running) == 3, "the fourth record took the free slot")
        assert stream.read == 4
        for sub in subs:
            run.gate(sub).set()
        await until(lambda: len(h.offsets.finished_at) == 5, "all finished")
    assert run.peak == 3
    assert h.offsets.started_at == [0, 1, 2, 3, 4], "handed to the guard in stream order"
    assert sorted(h.offsets.finished_at) == [0, 1, 2, 3, 4]
    assert all(ev.message.refcount == 0 and ev.message.acked for ev in events)
    for sub in subs:
        assert h.statuses(sub) == ["processing", "completed"]


async def test_with_one_in_flight_records_run_one_after_another_in_order() -> None:
    run = Gated()
    h = Harness(run)  # the default: 1
    subs = [task() for _ in range(3)]
    stream = FakeStream([submitted_event(s, offset=i) for i, s in enumerate(subs)])
    async with agent(h, stream):
        for n, sub in enumerate(subs):
            await until(lambda n=n: len(run.started) == n + 1, f"task {n} started")
            await asyncio.sleep(0.01)
            assert run.running == [str(sub.task_id)]
            assert stream.read == n + 1
            run.gate(sub).set()
        await until(lambda: len(h.offsets.finished_at) == 3, "all finished")
    assert run.peak == 1
    assert run.started == [str(s.task_id) for s in subs]
    assert h.offsets.finished_at == [0, 1, 2]


async def test_records_of_one_task_never_run_together() -> None:
    run = Gated()
    h = Harness(run, max_in_flight=8)
    sub, other = task(), task()
    stream = FakeStream(
        [
            submitted_event(sub, offset=0),
            submitted_event(sub, offset=1),  # a duplicate (a producer retry)
            submitted_event(other, offset=2),
        ]
    )
    async with agent(h, stream):
        await until(lambda: len(run.running) == 2, "the first record and the other task run")
        assert sorted(run.running) == sorted([str(sub.task_id), str(other.task_id)])
        assert stream.read == 3
        run.gate(sub).set()
        run.gate(other).set()
        await until(lambda: len(h.offsets.finished_at) == 3, "all finished")
    assert run.started.count(str(sub.task_id)) == 1, "the duplicate saw the final status"
    assert h.statuses(sub) == ["processing", "completed"]
    assert len(h.ready_for(sub)) == 1


async def test_a_rebalance_hands_back_running_and_waiting_records_unfinished() -> None:
    run = Gated()
    h = Harness(run, max_in_flight=4, shutdown_grace_s=0.1)  # drain: half, 0.05 s
    sub, other = task(), task()
    events = [
        submitted_event(sub, offset=0),
        submitted_event(sub, offset=1),  # waits for the first behind the task's lock
        submitted_event(other, offset=2),
    ]
    stream = FakeStream(events)
    async with agent(h, stream):
        await until(lambda: len(run.running) == 2 and stream.read == 3, "two run, one waits")
        h.processor._interrupt("rebalance")
        await until(lambda: all(ev.message.acked for ev in events), "all handed back")
        assert h.offsets.finished_at == [], "nothing cut short counts as finished"
        assert run.started.count(str(sub.task_id)) == 1, "the waiting record never started"
        # The task's table entry says interrupted, not crashed: its delivery count is undone.
        assert h.table[str(sub.task_id)]["unfinished"] == 0
        # Records handed over after the rebalance run as usual.
        later = task()
        run.gate(later).set()
        stream.add(submitted_event(later, offset=3))
        await until(lambda: h.offsets.finished_at == [3], "a later record finished")
    assert all(ev.message.refcount == 0 for ev in events)


async def test_stopping_the_agent_cancels_its_handlers_and_releases_their_records() -> None:
    run = Gated()
    h = Harness(run, max_in_flight=4)
    subs = [task() for _ in range(2)]
    events = [submitted_event(s, offset=i) for i, s in enumerate(subs)]
    async with agent(h, FakeStream(events)) as running:
        await until(lambda: len(run.running) == 2, "both run")
        running.cancel()
        await until(lambda: all(ev.message.acked for ev in events), "both released")
    assert h.offsets.finished_at == []
    assert run.running == []


async def test_key_locks_are_fifo_and_forgotten_when_free() -> None:
    locks = KeyLocks()
    order: list[int] = []
    first = asyncio.Event()

    async def holder(n: int) -> None:
        async with locks.hold(b"k"):
            order.append(n)
            if n == 0:
                await first.wait()

    tasks = [asyncio.ensure_future(holder(n)) for n in range(4)]
    await until(lambda: order == [0], "the first holds the lock")
    assert len(locks) == 1
    first.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert len(locks) == 0
    async with locks.hold(None):  # no key: nothing to order by
        assert len(locks) == 0
