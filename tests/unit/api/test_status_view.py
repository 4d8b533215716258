"""How the API's status view merges status changes that arrive in any order."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from medvoice_common.settings import CommonSettings
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


async def test_view_keeps_the_newest_change_and_gives_it_back_whole() -> None:
    view = StatusView(CommonSettings())
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
    caplog: pytest.LogCaptureFixture,
) -> None:
    view = StatusView(CommonSettings())
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
