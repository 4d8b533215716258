"""The commit guard: what may be committed, and re-reading records the stream skipped.

A fake consumer stands in for Faust's (only the parts the guard uses); the guard's effect
on a real broker is what the SIGKILL test checks.
"""

from collections.abc import Mapping
from typing import Any, cast

from faust.types import TP

from processors.offsets import OffsetGuard

WORK = TP("t.audio.submitted", 0)
OTHER = TP("t.changelog", 0)


class FakeSignal:
    def __init__(self) -> None:
        self.handlers: list[Any] = []

    def connect(self, handler: Any) -> None:
        self.handlers.append(handler)


class FakeConsumer:
    def __init__(self, committed: int | None, earliest: int = 0) -> None:
        self._committed_offset = {WORK: committed}
        self.earliest = earliest
        self.seeks: list[tuple[TP, int]] = []
        self.faust_says: int | None = 99  # what Faust's own bookkeeping would commit

    def _new_offset(self, tp: TP) -> int | None:
        return self.faust_says

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def earliest_offsets(self, *tps: TP) -> Mapping[TP, int]:
        return dict.fromkeys(tps, self.earliest)


class FakeApp:
    def __init__(self, consumer: FakeConsumer) -> None:
        self.consumer = consumer
        self.on_partitions_revoked = FakeSignal()


def guarded(committed: int | None, earliest: int = 0) -> tuple[OffsetGuard, FakeConsumer]:
    consumer = FakeConsumer(committed, earliest)
    guard = OffsetGuard(cast(Any, FakeApp(consumer)), [WORK.topic])
    guard.install()
    return guard, consumer


async def test_commit_offset_passes_only_finished_records() -> None:
    guard, consumer = guarded(committed=10)
    commit = cast(Any, consumer)._new_offset
    assert commit(WORK) is None, "nothing known yet: nothing committed"
    for offset in (10, 11, 12):
        await guard.started(WORK, offset)
    guard.finished(WORK, 11)  # 10 still in progress
    assert commit(WORK) == 10
    guard.finished(WORK, 10)
    assert commit(WORK) == 12
    guard.finished(WORK, 12)
    assert commit(WORK) == 13
    assert commit(OTHER) == 99, "other topics keep Faust's own offsets"


async def test_a_record_skipped_at_the_committed_position_is_read_again() -> None:
    # what the SIGKILL test caught: the stream resumed at 20 with 19 committed
    guard, consumer = guarded(committed=19)
    await guard.started(WORK, 20)
    assert consumer.seeks == [(WORK, 19)]
    guard.finished(WORK, 20)
    assert guard.commit_offset(WORK) == 19, "never past the record not yet handled"
    await guard.started(WORK, 19)  # read again after the seek
    await guard.started(WORK, 20)  # and the one after it, a duplicate now
    assert consumer.seeks == [(WORK, 19)], "re-reading is not a new gap"
    guard.finished(WORK, 19)
    guard.finished(WORK, 20)
    assert guard.commit_offset(WORK) == 21


async def test_without_a_commit_the_partition_starts_at_its_earliest_record() -> None:
    guard, consumer = guarded(committed=None, earliest=0)
    await guard.started(WORK, 3)
    assert consumer.seeks == [(WORK, 0)]
    guard, consumer = guarded(committed=None, earliest=5)
    await guard.started(WORK, 5)
    assert consumer.seeks == []


async def test_records_deleted_by_retention_are_not_sought_forever() -> None:
    guard, consumer = guarded(committed=10, earliest=40)
    await guard.started(WORK, 40)
    assert consumer.seeks == []
    guard.finished(WORK, 40)
    assert guard.commit_offset(WORK) == 41


async def test_revocation_forgets_the_partition() -> None:
    guard, _ = guarded(committed=4)
    await guard.started(WORK, 4)
    guard.finished(WORK, 4)
    (handler,) = cast(Any, guard.app).on_partitions_revoked.handlers
    await handler(guard.app, {WORK}, signal=None)
    assert guard.commit_offset(WORK) is None
