"""A cold replica on a large ``task.status``: it serves, but ``/readyz`` says "catching up"
with the records still to read (503, so no traffic is routed to it) until it has read what
the topic held when it started; then it is ready and knows every task. No start-up timeout
cuts the catch-up short."""

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from schemas.events import ErrorInfo, TaskStatusChanged
from schemas.status import TaskStatus
from tests.fixtures.kafka_broker import free_port
from tests.fixtures.processes import ManagedProcess, python_module
from tests.fixtures.stack import StackConfig
from tests.fixtures.topic_reader import create_topic, produce

pytestmark = pytest.mark.integration
TASKS = 60_000
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def api_proc() -> Iterator[list[ManagedProcess]]:
    procs: list[ManagedProcess] = []
    yield procs
    for proc in procs:
        proc.terminate()


def failed(n: int) -> TaskStatusChanged:
    return TaskStatusChanged(
        task_id=uuid.UUID(int=n + 1),
        user_id=f"user{n % 50}",
        file_id=f"f{n}",
        status=TaskStatus.FAILED,
        submitted_at=T0,
        occurred_at=T0,
        error=ErrorInfo(code="audio_unreadable", message="not audio"),
    )


def records_behind_until_ready(url: str) -> list[int]:
    """Poll /readyz until 200; the records_behind of every "catching up" answer."""
    behind: list[int] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(f"{url}/readyz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.05)  # not listening yet
            continue
        body = resp.json()
        if resp.status_code == 200:
            assert body["status"] == "ready"
            return behind
        assert resp.status_code == 503
        assert body["status"] == "catching up", body
        assert body["checks"]["status_view"] is False
        behind.append(body["catching_up"]["records_behind"])
        time.sleep(0.05)
    raise AssertionError(f"not ready within 300 s: {behind[-3:]}")


async def test_readiness_reports_the_catch_up_until_every_task_is_known(
    stack_config: StackConfig, api_proc: list[ManagedProcess], tmp_path: Path
) -> None:
    cfg = stack_config
    topic = cfg.topic("task.status")
    await create_topic(cfg.bootstrap, topic, cfg.partitions, cleanup_policy="compact")
    changes = [failed(n) for n in range(TASKS)]
    await produce(cfg.bootstrap, topic, [(str(c.task_id), c.to_bytes()) for c in changes])
    port = free_port()
    env = cfg.env(MEDVOICE_API__PORT=str(port), MEDVOICE_API__STATE_DIR=str(tmp_path / "s"))
    api_proc.append(ManagedProcess("api-cold", python_module("producer_api"), env, cfg.log_dir))
    url = f"http://127.0.0.1:{port}"
    behind = records_behind_until_ready(url)
    assert behind, "never seen catching up: the topic was read before the first probe"
    assert all(0 < b <= TASKS for b in behind)
    assert behind == sorted(behind, reverse=True)  # it only moves forward
    metrics = httpx.get(f"{url}/metrics").text
    assert "medvoice_status_view_records_behind 0.0" in metrics
    with cfg.client(url) as admin:
        for c in (changes[0], changes[TASKS // 2], changes[-1]):
            assert admin.get(f"/tasks/{c.task_id}").json()["status"] == "failed"
    assert "status view caught up" in api_proc[0].log_text()
