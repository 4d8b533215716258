"""The commit guard: what may be committed, and re-reading records the stream skipped.

A fake consumer stands in for Faust's (only the parts the guard uses); the guard's effect
on a real broker is what the SIGKILL test checks.
"""

from collections.abc import Mapping
from typing import Any, cast

import pytest
from faust.types import TP

from processors.offsets import IncompatibleFaust, OffsetGuard

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

    async def perform_seek(self) -> None:
        self.seeks.append((OTHER, -1))  # Faust's own seek of every partition

    def assignment(self) -> set[TP]:
        return {WORK, OTHER}

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


async def test_records_of_the_old_batch_after_a_gap_seek_back_again_until_it_is_read() -> None:
    # What a SIGKILL run at 32 in flight caught: after the guard sought back to 20, Faust's
    # fetch loop went on through the batch it held (31, 32, ...) and set its read position
    # after each, over the seek; it then dropped 20..30 as already read and the partition
    # stalled. The guard keeps expecting 20 and seeks again after each such record, so
    # the last seek is always its own.
    guard, consumer = guarded(committed=20)
    for offset in (31, 32, 33):
        await guard.started(WORK, offset)
    assert consumer.seeks == [(WORK, 20)] * 3
    for offset in range(20, 34):  # the re-read, then duplicates of 31..33
        await guard.started(WORK, offset)
    assert consumer.seeks == [(WORK, 20)] * 3, "no seek once the gap is read"
    for offset in range(20, 34):
        guard.finished(WORK, offset)
    assert guard.commit_offset(WORK) == 34


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


async def test_after_faust_seeks_an_assignment_work_partitions_go_back_to_their_commit() -> None:
    # A record at the committed position that Faust skips on an idle partition would only
    # be read again when a later record arrives: the guard seeks there itself.
    _, consumer = guarded(committed=19)
    await cast(Any, consumer).perform_seek()
    assert consumer.seeks == [(OTHER, -1), (WORK, 19)]
    _, consumer = guarded(committed=None)
    await cast(Any, consumer).perform_seek()
    assert consumer.seeks == [(OTHER, -1), (WORK, 0)], "no commit: from the earliest record"


async def test_revocation_forgets_the_partition() -> None:
    guard, _ = guarded(committed=4)
    await guard.started(WORK, 4)
    guard.finished(WORK, 4)
    (handler,) = cast(Any, guard.app).on_partitions_revoked.handlers
    await handler(guard.app, {WORK}, signal=None)
    assert guard.commit_offset(WORK) is None


# -- the coupling to Faust's private consumer API, checked on the real class -----------------


def real_app() -> Any:
    """A real Faust app (nothing connects until it runs) and its real aiokafka consumer."""
    import faust

    return faust.App(f"guard-{id(object())}", broker="kafka://127.0.0.1:1", autodiscover=False)


def test_the_guard_takes_over_the_commits_of_the_real_faust_consumer() -> None:
    from faust.transport.consumer import Consumer

    app = real_app()
    assert isinstance(app.consumer, Consumer)
    guard = OffsetGuard(app, [WORK.topic])
    guard.install()
    guard._parts[WORK] = _partition_at(12)
    # Faust's own commit path asks the hook for each partition with acked records.
    app.consumer._acked[WORK] = [12, 13, 14]
    app.consumer._acked_index[WORK] = {12, 13, 14}
    assert app.consumer._filter_committable_offsets([WORK]) == {WORK: 12}


@pytest.mark.parametrize("missing", ["_new_offset", "_committed_offset"])
def test_install_fails_at_start_up_when_faust_lacks_what_it_replaces(missing: str) -> None:
    from faust.transport.consumer import Consumer

    app = real_app()
    consumer = app.consumer
    if missing == "_new_offset":
        # A Faust release that renamed the method: a real consumer class without it.
        renamed = type("RenamedConsumer", (type(consumer),), {"_new_offset": None})
        consumer.__class__ = renamed
    else:
        delattr(consumer, missing)
    assert isinstance(consumer, Consumer)
    with pytest.raises(IncompatibleFaust, match=missing):
        OffsetGuard(app, [WORK.topic]).install()


def _partition_at(mark: int) -> Any:
    from processors.offsets import _Partition

    return _Partition(mark)
