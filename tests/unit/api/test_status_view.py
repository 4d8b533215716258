"""How the API's status view merges status changes that arrive in any order."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from medvoice_common.settings import CommonSettings
from producer_api import status_view
from producer_api.status_store import StatusStore, StoreOptions
from producer_api.status_view import StatusView, newer
from schemas.events import ErrorInfo, TaskStatusChanged
from schemas.status import TaskStatus

TASK = uuid.uuid4()
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def change(
    status: TaskStatus, *, attempt: int = 0, replay: int = 0, dt: int = 0, user: str = "u"
) -> TaskStatusChanged:
    return TaskStatusChanged(
        task_id=TASK,
        user_id=user,
        file_id="f",
        status=status,
        submitted_at=T0,
        occurred_at=T0 + timedelta(seconds=dt),
        attempt=attempt,
        replay=replay,
        error=ErrorInfo(code="x", message="y") if status is TaskStatus.FAILED else None,
    )


def test_a_late_queued_does_not_undo_processing() -> None:
    assert not newer(change(TaskStatus.PROCESSING, dt=1), change(TaskStatus.QUEUED))


def test_first_final_status_wins_against_duplicates() -> None:
    done = change(TaskStatus.COMPLETED, dt=5)
    assert not newer(done, change(TaskStatus.COMPLETED, dt=9))
    assert not newer(done, change(TaskStatus.FAILED, dt=9))
    assert not newer(done, change(TaskStatus.PROCESSING, attempt=3, dt=9))


def test_retries_move_forward_by_attempt() -> None:
    first = change(TaskStatus.PROCESSING, attempt=0, dt=1)
    assert newer(first, change(TaskStatus.PROCESSING, attempt=1, dt=2))
    assert not newer(change(TaskStatus.PROCESSING, attempt=2, dt=3), first)


def test_a_replay_starts_a_failed_task_afresh() -> None:
    failed = change(TaskStatus.FAILED, attempt=4, dt=10)
    assert newer(failed, change(TaskStatus.PROCESSING, replay=1, dt=20))
    assert not newer(
        change(TaskStatus.COMPLETED, replay=1, dt=30), change(TaskStatus.FAILED, attempt=4)
    )


def store_at(path: Path, retention_days: int = 365) -> StatusStore:
    return StatusStore(path, StoreOptions(1 << 20, 1 << 20), timedelta(days=retention_days))


@pytest.fixture
async def view(tmp_path: Path) -> AsyncIterator[StatusView]:
    the_view = StatusView(CommonSettings(), store_at(tmp_path / "status"))
    yield the_view
    the_view.store.close()


async def test_view_keeps_the_newest_change_and_gives_it_back_whole(view: StatusView) -> None:
    done = change(TaskStatus.COMPLETED, dt=5)
    for c in (change(TaskStatus.QUEUED), change(TaskStatus.PROCESSING, dt=1), done):
        view.apply(c)
    view.apply(change(TaskStatus.PROCESSING, attempt=1, dt=9))  # late: the task is final
    assert view.get(str(TASK)) == done
    assert view.get(str(uuid.uuid4())) is None
    replayed = change(TaskStatus.QUEUED, replay=1, dt=20)
    view.apply(replayed, replayed.to_bytes())
    assert view.get(str(TASK)) == replayed


def conflicts() -> float:
    return REGISTRY.get_sample_value("medvoice_status_owner_conflicts_total") or 0.0


async def test_a_record_naming_another_owner_never_changes_the_task(
    caplog: pytest.LogCaptureFixture, view: StatusView
) -> None:
    queued = change(TaskStatus.QUEUED)
    view.apply(queued)
    before = conflicts()
    for forged in (
        change(TaskStatus.COMPLETED, dt=5, user="dr_mallory"),
        change(TaskStatus.QUEUED, replay=1, dt=6, user="dr_mallory"),
    ):
        view.apply(forged, forged.to_bytes())
    assert view.get(str(TASK)) == queued
    assert conflicts() == before + 2
    assert "dr_mallory" not in caplog.text
    done = change(TaskStatus.COMPLETED, dt=7)  # the owner's own records still apply
    view.apply(done)
    assert view.get(str(TASK)) == done


def task_of(
    user: str, submitted_s: int, status: TaskStatus = TaskStatus.QUEUED
) -> TaskStatusChanged:
    return TaskStatusChanged(
        task_id=uuid.uuid4(),
        user_id=user,
        file_id="f",
        status=status,
        submitted_at=T0 + timedelta(seconds=submitted_s),
        occurred_at=T0 + timedelta(seconds=submitted_s),
    )


def listed(view: StatusView, user: str, after: bytes | None = None) -> list[uuid.UUID]:
    return [entry.task_id for entry in view.user_tasks(user, after)]


async def test_the_user_index_lists_only_the_owners_tasks_newest_first(view: StatusView) -> None:
    mine = [task_of("ann", s) for s in (5, 1, 9, 3)]
    theirs = task_of("anne", 4)  # a user id that extends another must not leak into it
    for c in [*mine, theirs]:
        view.apply(c)
    newest_first = [c.task_id for c in sorted(mine, key=lambda c: c.submitted_at, reverse=True)]
    assert listed(view, "ann") == newest_first
    assert listed(view, "anne") == [theirs.task_id]
    entries = list(view.user_tasks("ann", None))
    assert listed(view, "ann", entries[1].cursor) == newest_first[2:]


async def test_a_status_change_moves_the_index_entry_not_duplicates_it(view: StatusView) -> None:
    queued = task_of("ann", 1)
    view.apply(queued)
    done = queued.model_copy(
        update={"status": TaskStatus.COMPLETED, "occurred_at": T0 + timedelta(seconds=9)}
    )
    view.apply(done)
    entries = list(view.user_tasks("ann", None))
    assert [(e.task_id, e.status) for e in entries] == [(queued.task_id, TaskStatus.COMPLETED)]


async def test_a_tombstone_removes_the_task_and_its_index_entries(view: StatusView) -> None:
    gone, kept = task_of("ann", 1), task_of("ann", 2)
    view.apply(gone)
    view.apply(kept)
    view.remove(gone.task_id)
    assert view.get(str(gone.task_id)) is None
    assert listed(view, "ann") == [kept.task_id]
    far_future = T0 + timedelta(days=10_000)
    assert view.expired(far_future, 10) == [kept.task_id]


async def test_expiry_follows_the_last_change_plus_the_retention(tmp_path: Path) -> None:
    view = StatusView(CommonSettings(), store_at(tmp_path / "s", retention_days=30))
    old, recent = task_of("ann", 0), task_of("ann", 20 * 86400)
    view.apply(old)
    view.apply(recent)
    assert view.expired(T0 + timedelta(days=31), 10) == [old.task_id]
    assert view.expired(T0 + timedelta(days=29), 10) == []
    assert view.expired(T0 + timedelta(days=51), 1) == [old.task_id]  # the limit holds
    view.store.close()


async def test_the_store_keeps_tasks_and_offsets_across_a_reopen(tmp_path: Path) -> None:
    first = StatusView(CommonSettings(), store_at(tmp_path / "s"))
    c = task_of("ann", 1, TaskStatus.COMPLETED)
    first.apply(c, c.to_bytes(), offset=(2, 41))
    first.store.record_offset(0, 7)
    first.store.close()
    again = StatusView(CommonSettings(), store_at(tmp_path / "s"))
    assert again.get(str(c.task_id)) == c
    assert again.store.offsets() == {0: 7, 2: 41}
    assert listed(again, "ann") == [c.task_id]
    again.store.close()


async def test_next_change_returns_at_once_when_the_caller_is_behind(view: StatusView) -> None:
    c = task_of("ann", 1)
    view.apply(c)
    assert await view.next_change(str(c.task_id), None) == c
    assert await view.next_change(str(c.task_id), str(uuid.uuid4())) == c
    assert await view.next_change(str(uuid.uuid4()), None) is None


async def test_next_change_wakes_on_a_change_and_on_removal(view: StatusView) -> None:
    c = task_of("ann", 1)
    view.apply(c)
    waiting = asyncio.create_task(view.next_change(str(c.task_id), str(c.event_id)))
    await asyncio.sleep(0)  # let it register; nothing has changed yet
    assert not waiting.done()
    later = c.model_copy(update={"event_id": uuid.uuid4(), "status": TaskStatus.PROCESSING})
    view.apply(later)
    assert await waiting == later
    removed = asyncio.create_task(view.next_change(str(c.task_id), str(later.event_id)))
    await asyncio.sleep(0)
    view.remove(c.task_id)
    assert await removed is None
    assert not view._watchers  # no waiter is left behind


def read_back(
    raw: bytes | None, offset: int, key: uuid.UUID = TASK
) -> ConsumerRecord[bytes, bytes]:
    """``raw`` as the view's consumer reads it from partition 0 at ``offset``."""
    value_size = len(raw) if raw is not None else -1
    return ConsumerRecord(
        "task.status", 0, offset, 0, 0, str(key).encode(), raw, None, 36, value_size, ()
    )


async def test_own_write_read_back_only_advances_the_offset(
    view: StatusView, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = change(TaskStatus.QUEUED)
    view.apply_own(queued, queued.to_bytes())
    assert view.get(str(TASK)) == queued  # applied when Kafka acknowledged it
    parsed: list[bytes] = []
    parse = TaskStatusChanged.model_validate_json

    def counted(raw: bytes) -> TaskStatusChanged:
        parsed.append(raw)
        return parse(raw)

    monkeypatch.setattr(TaskStatusChanged, "model_validate_json", counted)
    view._apply_record(read_back(queued.to_bytes(), 6))
    assert parsed == [] and view.store.offsets() == {0: 7}
    # Once read back it is forgotten: the same bytes again (a duplicate) are merged as usual.
    view._apply_record(read_back(queued.to_bytes(), 7))
    assert len(parsed) == 1 and view.store.offsets() == {0: 8}
    assert view.get(str(TASK)) == queued


async def test_other_records_of_a_task_with_an_own_write_are_merged(view: StatusView) -> None:
    queued = change(TaskStatus.QUEUED)
    view.apply_own(queued, queued.to_bytes())
    processing = change(TaskStatus.PROCESSING, dt=1)
    view._apply_record(read_back(processing.to_bytes(), 3))  # not the own write's bytes
    assert view.get(str(TASK)) == processing and view.store.offsets() == {0: 4}


async def test_own_writes_awaiting_read_back_are_bounded(
    view: StatusView, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(status_view, "OWN_WRITES_MAX", 3)
    tasks = [uuid.uuid4() for _ in range(5)]
    for task in tasks:
        queued = change(TaskStatus.QUEUED).model_copy(update={"task_id": task})
        view.apply_own(queued, queued.to_bytes())
    assert list(view._own) == [str(t).encode() for t in tasks[2:]]  # the oldest forgotten
    for task in tasks:
        assert view.get(str(task)) is not None  # every one applied


class FetchedAll:
    """A consumer whose buffer holds a large fetch: ``getmany`` hands out at most
    ``max_records`` of it at once, without suspending (as aiokafka does with buffered
    records), then waits for more that never come."""

    def __init__(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        self.pending = records

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[str, list[ConsumerRecord[bytes, bytes]]]:
        if not self.pending:
            await asyncio.Event().wait()
        count = max_records or len(self.pending)
        out, self.pending = self.pending[:count], self.pending[count:]
        return {"task.status/0": out}


async def test_a_large_fetch_is_applied_in_slices_with_requests_served_between(
    view: StatusView,
) -> None:
    total = 1000
    records = []
    for n in range(total):
        task = uuid.UUID(int=n + 1)
        queued = change(TaskStatus.QUEUED).model_copy(update={"task_id": task})
        records.append(read_back(queued.to_bytes(), n, key=task))
    consumer = FetchedAll(records)
    view._consumer = consumer  # the loop under test, not Kafka
    view._caught_up.set()
    runner = asyncio.create_task(view._run())
    left: list[int] = []  # records still to apply, each time another task got a turn
    while consumer.pending:
        left.append(len(consumer.pending))
        await asyncio.sleep(0)
    runner.cancel()
    steps = [a - b for a, b in zip([total, *left], left, strict=False)]
    assert max(steps) <= status_view.APPLY_SLICE, steps
    assert view.store.offsets() == {0: total}
    assert view.get(str(uuid.UUID(int=total))) is not None
