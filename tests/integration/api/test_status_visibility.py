"""The status view against the real broker: a task is readable by its owner as soon as its
id is answered, on every replica; the work is published only after the task's ``queued``
status is acknowledged (so no worker status can precede it, and compaction, which keeps a
task's last record, keeps the final status); a restarted API shows what compaction keeps."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.events import TaskStatusChanged
from schemas.status import TaskStatus
from tests.fixtures.fake_api import M4A_HEAD
from tests.fixtures.processes import ManagedProcess
from tests.fixtures.stack import StackConfig, start_api
from tests.fixtures.topic_reader import create_topic, produce, read_to_end, task_ids

pytestmark = pytest.mark.integration
USER = "dr_visible"
SUBMISSIONS = 20


@pytest.fixture
def apis(stack_config: StackConfig) -> Iterator[list[tuple[ManagedProcess, str]]]:
    started: list[tuple[ManagedProcess, str]] = []
    yield started
    for proc, _ in started:
        proc.terminate()


def store_recording(cfg: StackConfig, file_id: str) -> None:
    cfg.s3().put_object(
        Bucket=cfg.bucket, Key=f"audio/{USER}/{file_id}.m4a", Body=M4A_HEAD + bytes(256)
    )


def test_a_task_is_readable_on_every_replica_as_soon_as_its_id_is_answered(
    stack_config: StackConfig, apis: list[tuple[ManagedProcess, str]]
) -> None:
    cfg = stack_config
    apis.append(start_api(cfg))
    apis.append(start_api(cfg))
    store_recording(cfg, "rec1")
    (_, one), (_, other) = apis
    with cfg.client(one, USER, admin=False) as a, cfg.client(other, USER, admin=False) as b:
        for n in range(SUBMISSIONS):
            resp = a.post(f"/process_audio_v2/{USER}", params={"file_id": "rec1"})
            assert resp.status_code == 200, resp.text
            task = resp.json()["task_id"]
            for replica, client in (("answering", a), ("other", b)):
                got = client.get(f"/tasks/{task}")
                assert got.status_code == 200, (n, replica, got.text)
                assert got.json()["status"] == "queued" and got.json()["user_id"] == USER
    with cfg.client(other, "dr_someone_else", admin=False) as stranger:
        assert stranger.get(f"/tasks/{task}").status_code == 404


async def test_the_work_is_published_only_after_its_queued_status_is_acknowledged(
    stack_config: StackConfig, apis: list[tuple[ManagedProcess, str]]
) -> None:
    cfg = stack_config
    # A status topic that refuses every record: the queued status can never be acknowledged.
    await create_topic(
        cfg.bootstrap,
        cfg.topic("task.status"),
        cfg.partitions,
        cleanup_policy="compact",
        max_message_bytes="64",
    )
    apis.append(start_api(cfg))
    store_recording(cfg, "rec2")
    with cfg.client(apis[0][1], USER, admin=False) as client:
        for headers in ({}, {"Idempotency-Key": "visit-1"}):
            resp = client.post(
                f"/process_audio_v2/{USER}", params={"file_id": "rec2"}, headers=headers
            )
            assert resp.status_code == 500, resp.text
            assert "task_id" not in resp.text
    work = await read_to_end(cfg.bootstrap, cfg.topic("audio.submitted"))
    assert task_ids(work) == [], "work was published for a task without a queued status"


def test_an_idempotency_key_reused_for_another_request_is_refused(
    stack_config: StackConfig, apis: list[tuple[ManagedProcess, str]]
) -> None:
    cfg = stack_config
    apis.append(start_api(cfg))
    store_recording(cfg, "rec4")
    store_recording(cfg, "rec5")
    with cfg.client(apis[0][1], USER, admin=False) as client:

        def post(file_id: str) -> httpx.Response:
            return client.post(
                f"/process_audio_v2/{USER}",
                params={"file_id": file_id},
                headers={"Idempotency-Key": "visit-9"},
            )

        first = post("rec4")
        assert first.status_code == 200, first.text
        again = post("rec4")
        assert again.status_code == 200 and again.json() == first.json()
        other = post("rec5")
        assert other.status_code == 422, other.text
        assert "Idempotency-Key" in other.json()["detail"]


def status(task: uuid.UUID, value: TaskStatus, **extra: Any) -> TaskStatusChanged:
    return TaskStatusChanged(
        task_id=task,
        user_id=USER,
        file_id="rec3",
        status=value,
        submitted_at=datetime.now(UTC),
        **extra,
    )


async def test_the_final_status_survives_compaction_and_restarts(
    stack_config: StackConfig, apis: list[tuple[ManagedProcess, str]], tmp_path: Path
) -> None:
    """Submissions through the API, then a worker's statuses: in every partition the task's
    first record is ``queued`` and its last the final one, so compaction keeps the final;
    an API started on what compaction leaves (the final record alone) shows it."""
    cfg = stack_config
    apis.append(start_api(cfg))
    store_recording(cfg, "rec3")
    with cfg.client(apis[0][1], USER, admin=False) as client:
        tasks = [
            client.post(f"/process_audio_v2/{USER}", params={"file_id": "rec3"}).json()["task_id"]
            for _ in range(4)
        ]
    # A worker's statuses, written once the work is on its topic (as a worker reads it).
    work = await read_to_end(cfg.bootstrap, cfg.topic("audio.submitted"))
    assert sorted(task_ids(work)) == sorted(tasks)
    topic = cfg.topic("task.status")
    for task in tasks:
        tid = uuid.UUID(task)
        await produce(
            cfg.bootstrap,
            topic,
            [
                (task, status(tid, TaskStatus.PROCESSING).to_bytes()),
                (task, status(tid, TaskStatus.COMPLETED).to_bytes()),
            ],
        )
    records = await read_to_end(cfg.bootstrap, topic)
    for task in tasks:
        order = [r for r in records if r.key == task.encode()]
        assert len({r.partition for r in order}) == 1
        seen = [TaskStatusChanged.model_validate_json(r.value).status for r in order]
        assert seen == [TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.COMPLETED], task

    # What compaction keeps of each task (its last record), on a topic of a new deployment.
    compacted = StackConfig(cfg.bootstrap, cfg.s3_url, tmp_path, bucket=cfg.bucket)
    compacted.auth_secret = cfg.auth_secret
    last = {r.key.decode(): r.value for r in records}
    await create_topic(
        compacted.bootstrap, compacted.topic("task.status"), 2, cleanup_policy="compact"
    )
    await produce(compacted.bootstrap, compacted.topic("task.status"), list(last.items()))
    apis.append(start_api(compacted))
    with compacted.client(apis[-1][1], USER, admin=False) as restarted:
        for task in tasks:
            got = restarted.get(f"/tasks/{task}")
            assert got.status_code == 200, got.text
            assert got.json()["status"] == "completed"
