"""The retention sweeper tombstones exactly the tasks past their retention, once caught up."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from medvoice_common.settings import CommonSettings
from producer_api.publisher import Publisher
from producer_api.retention import RetentionSweeper
from producer_api.settings import RetentionSettings
from producer_api.status_store import StatusStore, StoreOptions
from producer_api.status_view import StatusView
from schemas.events import TaskStatusChanged
from schemas.status import TaskStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class RecordingPublisher:
    """Keeps the tombstones it is asked to publish."""

    def __init__(self) -> None:
        self.tombstones: list[str] = []

    async def tombstone(self, task_id: str) -> None:
        self.tombstones.append(task_id)


@pytest.fixture
async def view(tmp_path: Path) -> AsyncIterator[StatusView]:
    store = StatusStore(tmp_path / "s", StoreOptions(1 << 20, 1 << 20), timedelta(days=365))
    the_view = StatusView(CommonSettings(), store)
    yield the_view
    store.close()


def finished(days: int) -> TaskStatusChanged:
    at = T0 + timedelta(days=days)
    return TaskStatusChanged(
        task_id=uuid.uuid4(),
        user_id="ann",
        file_id="f",
        status=TaskStatus.COMPLETED,
        submitted_at=at,
        occurred_at=at,
    )


async def test_only_expired_tasks_are_tombstoned_in_batches(view: StatusView) -> None:
    old = [finished(d) for d in (0, 1, 2)]
    young = finished(100)
    for c in [*old, young]:
        view.apply(c)
    publisher = RecordingPublisher()
    sweeper = RetentionSweeper(view, cast(Publisher, publisher), RetentionSettings(sweep_batch=2))
    now = T0 + timedelta(days=365 + 50)
    assert await sweeper.sweep(now) == 0  # not caught up: the expiry index may be partial
    view._caught_up.set()  # as the runner does once it has read the topic
    assert await sweeper.sweep(now) == 2
    assert await sweeper.sweep(now) == 1
    assert await sweeper.sweep(now) == 0
    assert publisher.tombstones == [str(c.task_id) for c in old]
    assert all(view.get(str(c.task_id)) is None for c in old)
    assert view.get(str(young.task_id)) == young
