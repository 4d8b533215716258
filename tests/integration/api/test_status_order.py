"""The order of a task's records on ``task.status`` with the real API and the real worker:
the API's ``queued`` comes first and the worker's final status last, so compaction (which
keeps a task's last record) keeps the final status; an API started on only what
compaction keeps shows it."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.events import TaskStatusChanged
from schemas.status import TaskStatus
from tests.fixtures.audio import spoken_clip
from tests.fixtures.processes import ManagedProcess
from tests.fixtures.stack import StackConfig, is_final, start_api, start_worker, wait_for_status
from tests.fixtures.topic_reader import create_topic, produce, read_to_end

pytestmark = [pytest.mark.integration, pytest.mark.slow]
USER = "dr_order"
TASKS = 3


@pytest.fixture
def procs() -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for proc in started:
        proc.terminate()


async def test_queued_first_final_last_and_what_compaction_keeps_shows_final(
    stack_config: StackConfig, procs: list[ManagedProcess], tmp_path: Path
) -> None:
    cfg = stack_config
    worker, _ = start_worker(cfg)
    procs.append(worker)
    api, url = start_api(cfg)
    procs.append(api)
    with cfg.client(url, USER, admin=False) as client:
        clip = spoken_clip("Short note.", "mp3", tmp_path)
        up = client.post(f"/uploads/{USER}", files={"file": ("n.mp3", clip, "audio/mpeg")})
        assert up.status_code == 201, up.text
        params = {"file_id": up.json()["file_id"], "file_extension": "mp3"}
        tasks = [
            client.post(f"/process_audio_v2/{USER}", params=params).json()["task_id"]
            for _ in range(TASKS)
        ]
        for task in tasks:
            assert wait_for_status(client, task, is_final)["status"] == "completed"

    records = await read_to_end(cfg.bootstrap, cfg.topic("task.status"))
    for task in tasks:
        mine = [r for r in records if r.key == task.encode()]
        seen = [TaskStatusChanged.model_validate_json(r.value).status for r in mine]
        assert seen[0] is TaskStatus.QUEUED, (task, seen)
        assert seen[-1] is TaskStatus.COMPLETED, (task, seen)
        assert TaskStatus.QUEUED not in seen[1:], (task, seen)

    # What compaction leaves (each task's last record), on a new deployment's topic that
    # shares the bucket (the transcripts), read by an API started afresh.
    compacted = StackConfig(cfg.bootstrap, cfg.s3_url, tmp_path / "compacted", bucket=cfg.bucket)
    compacted.log_dir.mkdir()
    compacted.auth_secret = cfg.auth_secret
    last = {r.key.decode(): r.value for r in records}
    topic = compacted.topic("task.status")
    await create_topic(compacted.bootstrap, topic, cfg.partitions, cleanup_policy="compact")
    await produce(compacted.bootstrap, topic, list(last.items()))
    restarted, url = start_api(compacted)
    procs.append(restarted)
    with compacted.client(url, USER, admin=False) as client:
        for task in tasks:
            body = client.get(f"/tasks/{task}").json()
            assert body["status"] == "completed" and body["transcript"]["text"], body
