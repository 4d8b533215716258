"""A user's task list and the erase of a task, against the real broker and S3 server: lists
hold only the owner's tasks, newest first, page by page; an erase removes the recording,
the transcript and the status (a tombstone) and the task then reads 404 on every replica,
after a warm restart on the same store and on a cold replica; a restart on its own store
resumes without re-reading the topic."""

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.events import TaskStatusChanged, TranscriptSummary
from schemas.ids import audio_object_key, transcript_object_key
from schemas.status import TaskStatus
from tests.fixtures.documents import transcript_document
from tests.fixtures.processes import ManagedProcess
from tests.fixtures.stack import POLL_S, StackConfig, start_api
from tests.fixtures.topic_reader import produce, read_to_end

pytestmark = pytest.mark.integration
ANN, BOB = "dr_ann", "dr_bob"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def apis() -> Iterator[list[tuple[ManagedProcess, str]]]:
    started: list[tuple[ManagedProcess, str]] = []
    yield started
    for proc, _ in started:
        if proc.alive():
            proc.terminate()


def status(user: str, n: int, state: TaskStatus) -> TaskStatusChanged:
    task_id = uuid.uuid4()
    summary = None
    if state is TaskStatus.COMPLETED:
        summary = TranscriptSummary(
            language="en",
            duration_s=1.0,
            word_count=2,
            transcript_uri=f"s3://b/{transcript_object_key(user, task_id)}",
        )
    return TaskStatusChanged(
        task_id=task_id,
        user_id=user,
        file_id=f"rec{n}",
        status=state,
        submitted_at=T0 + timedelta(minutes=n),
        occurred_at=T0 + timedelta(minutes=n, seconds=30),
        transcript=summary,
    )


def document(change: TaskStatusChanged) -> bytes:
    return transcript_document(change.task_id, change.user_id).model_dump_json().encode()


def wait_until(check: Any, what: str, timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(POLL_S)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def page_ids(client: httpx.Client, user: str, **params: Any) -> tuple[list[str], str | None]:
    resp = client.get(f"/users/{user}/tasks", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    for task in body["tasks"]:
        assert task["user_id"] == user
        assert "text" not in (task["transcript"] or {})
    return [t["task_id"] for t in body["tasks"]], body["next_cursor"]


def records_read(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    for line in text.splitlines():
        if line.startswith("medvoice_status_view_records_read_total "):
            return float(line.split()[1])
    raise AssertionError("no records-read metric")


async def test_list_and_erase_across_users_and_restarts(
    stack_config: StackConfig, apis: list[tuple[ManagedProcess, str]], tmp_path: Path
) -> None:
    cfg = stack_config
    state = tmp_path / "api-a-state"
    apis.append(start_api(cfg, MEDVOICE_API__STATE_DIR=str(state)))
    apis.append(start_api(cfg))  # a second replica on a temporary store
    (_, url_a), (_, url_b) = apis
    ann = [status(ANN, n, TaskStatus.COMPLETED) for n in range(5)]
    ann.append(status(ANN, 9, TaskStatus.PROCESSING))  # still running: not erasable
    bob = [status(BOB, n, TaskStatus.FAILED) for n in (3, 4)]
    s3 = cfg.s3()
    for change in [*ann, *bob]:
        s3.put_object(
            Bucket=cfg.bucket,
            Key=audio_object_key(change.user_id, change.file_id, "m4a"),
            Body=b"audio",
        )
        s3.put_object(
            Bucket=cfg.bucket,
            Key=transcript_object_key(change.user_id, change.task_id),
            Body=document(change),
        )
    topic = cfg.topic("task.status")
    await produce(cfg.bootstrap, topic, [(str(c.task_id), c.to_bytes()) for c in [*ann, *bob]])
    newest_first = [str(c.task_id) for c in sorted(ann, key=lambda c: c.submitted_at)][::-1]

    with (
        cfg.client(url_a, ANN, admin=False) as a,
        cfg.client(url_b, ANN, admin=False) as a_on_b,
        cfg.client(url_b, BOB, admin=False) as b,
    ):
        wait_until(lambda: len(page_ids(a, ANN, limit=100)[0]) == 6, "ann's tasks listed")
        # Pages of 4 then 2, newest first, with an opaque cursor; nothing of bob's.
        first, cursor = page_ids(a, ANN, limit=4)
        assert first == newest_first[:4] and cursor is not None
        second, last = page_ids(a, ANN, limit=4, cursor=cursor)
        assert second == newest_first[4:] and last is None
        assert page_ids(a, ANN, status="processing")[0] == [str(ann[-1].task_id)]
        since = (T0 + timedelta(minutes=3)).isoformat()
        assert page_ids(a, ANN, since=since)[0] == newest_first[:3]
        assert (
            a.get(f"/users/{ANN}/tasks", params={"cursor": "bm90LWEtY3Vyc29y"}).status_code == 422
        )
        # Another user's list is forbidden; their tasks cannot be read or erased (404).
        assert b.get(f"/users/{ANN}/tasks").status_code == 403
        wait_until(lambda: len(page_ids(b, BOB)[0]) == 2, "bob's tasks listed")
        victim = ann[0]
        assert b.delete(f"/tasks/{victim.task_id}").status_code == 404
        assert a.get(f"/tasks/{victim.task_id}").status_code == 200
        # A task still being processed is not erased.
        running = a.delete(f"/tasks/{ann[-1].task_id}")
        assert running.status_code == 409 and running.headers["Retry-After"]
        # The owner erases: 202, then 404 here at once and on the other replica.
        erased = a.delete(f"/tasks/{victim.task_id}")
        assert erased.status_code == 202, erased.text
        assert a.get(f"/tasks/{victim.task_id}").status_code == 404
        assert a.delete(f"/tasks/{victim.task_id}").status_code == 404
        wait_until(
            lambda: a_on_b.get(f"/tasks/{victim.task_id}").status_code == 404,
            "erased task gone on the other replica",
        )
        assert str(victim.task_id) not in page_ids(a_on_b, ANN, limit=100)[0]
        assert len(page_ids(a, ANN, limit=100)[0]) == 5

    left = {o["Key"] for o in s3.list_objects_v2(Bucket=cfg.bucket).get("Contents", [])}
    assert audio_object_key(ANN, victim.file_id, "m4a") not in left
    assert transcript_object_key(ANN, victim.task_id) not in left
    assert audio_object_key(ANN, ann[1].file_id, "m4a") in left  # only the erased task's
    assert transcript_object_key(ANN, ann[1].task_id) in left
    records = await read_to_end(cfg.bootstrap, topic)
    tombstones = [r for r in records if r.key == str(victim.task_id).encode() and r.value is None]
    assert tombstones, "no tombstone on task.status"

    # Warm restart of replica A on its store: it resumes (reads nothing already read), and
    # the erased task stays gone. A cold replica rebuilds and agrees.
    apis[0][0].terminate()
    apis[0] = start_api(cfg, MEDVOICE_API__STATE_DIR=str(state))
    apis.append(start_api(cfg))
    for _, url in (apis[0], apis[-1]):
        with cfg.client(url, ANN, admin=False) as client:
            assert client.get(f"/tasks/{victim.task_id}").status_code == 404
            assert client.get(f"/tasks/{ann[1].task_id}").json()["status"] == "completed"
            assert page_ids(client, ANN, limit=100)[0] == newest_first[:-1]
    assert records_read(apis[0][1]) == 0  # warm: resumed at its stored offsets
    assert records_read(apis[-1][1]) == len(records)  # cold: the whole topic
