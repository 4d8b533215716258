"""The sync and async clients against a real HTTP server playing the API: SSE with a dropped
connection resumed by Last-Event-ID, a stream that closes early, polling when the events path
is absent, the API's reasons on errors, one Idempotency-Key across submission retries."""

import socket
import uuid
from pathlib import Path

import pytest

from medvoice_client import ApiError, AsyncClient, Client, Task, TaskStatus, Unreachable
from tests.unit.client.scripted_api import SRT, USER, Action, ScriptedApi, serve

FAST = 0.05  # poll interval of these tests: the scripted server answers at once

DROP_THEN_RESUME: list[list[Action]] = [
    [
        ("retry", 50),
        ("comment",),
        ("event", "e1", "queued"),
        ("event", "e2", "processing"),
        ("drop",),
    ],
    [("event", "e3", "completed")],
]


def statuses(tasks: list[Task]) -> list[str]:
    return [str(t.status) for t in tasks]


def test_sync_follow_resumes_a_dropped_stream_with_last_event_id() -> None:
    api = ScriptedApi(streams=[list(s) for s in DROP_THEN_RESUME])
    with serve(api) as url, Client(url, poll_interval_s=FAST) as mv:
        seen = list(mv.follow(api.task_id, timeout_s=30))
    assert statuses(seen) == ["queued", "processing", "completed"]
    assert api.last_event_ids == [None, "e2"]
    assert api.polls == 1  # one catch-up poll after the break, none while streaming
    assert seen[-1].transcript is not None
    assert seen[-1].transcript.text == "Hello there."


async def test_async_follow_resumes_a_dropped_stream_with_last_event_id() -> None:
    api = ScriptedApi(streams=[list(s) for s in DROP_THEN_RESUME])
    with serve(api) as url:
        async with AsyncClient(url, poll_interval_s=FAST) as mv:
            seen = [t async for t in mv.follow(api.task_id, timeout_s=30)]
    assert statuses(seen) == ["queued", "processing", "completed"]
    assert api.last_event_ids == [None, "e2"]


def test_a_stream_closed_before_the_final_status_is_reopened() -> None:
    api = ScriptedApi(
        streams=[
            [("retry", 50), ("event", "e1", "queued"), ("close",)],
            [("event", "e2", "processing"), ("close",)],
            [("event", "e3", "completed")],
        ]
    )
    with serve(api) as url, Client(url, poll_interval_s=FAST) as mv:
        final = mv.wait(api.task_id, timeout_s=30)
    assert final.status is TaskStatus.COMPLETED
    assert api.last_event_ids == [None, "e1", "e2"]


def test_a_final_status_reached_while_disconnected_is_seen_by_the_catch_up_poll() -> None:
    api = ScriptedApi(
        streams=[[("event", "e1", "processing"), ("drop",)]],
        poll_statuses=["completed"],
    )
    with serve(api) as url, Client(url, poll_interval_s=FAST) as mv:
        seen = list(mv.follow(api.task_id, timeout_s=30))
    assert statuses(seen) == ["processing", "completed"]
    assert api.last_event_ids == [None]  # no reconnection once the task is final


def test_a_busy_stream_answer_polls_then_streams_after_retry_after() -> None:
    api = ScriptedApi(busy_streams=1, streams=[[("event", "e2", "completed")]])
    with serve(api) as url, Client(url, poll_interval_s=FAST) as mv:
        seen = list(mv.follow(api.task_id, timeout_s=30))
    assert statuses(seen) == ["queued", "completed"]  # the poll, then the stream
    assert api.polls == 1
    assert api.last_event_ids == [None, None]


@pytest.mark.parametrize("events_path", ["absent", "post-only"])
def test_polling_when_the_events_path_is_absent(events_path: str) -> None:
    api = ScriptedApi(
        events_path=events_path,
        poll_statuses=["queued", "queued", "processing", "completed"],
    )
    with serve(api) as url, Client(url, poll_interval_s=FAST) as mv:
        seen = list(mv.follow(api.task_id, timeout_s=30))
    assert statuses(seen) == ["queued", "processing", "completed"]  # repeats not reported
    assert api.polls == 4


def test_polling_rides_out_brief_503s_and_gives_up_with_the_apis_reason() -> None:
    passing = ScriptedApi(events_path="absent", poll_errors=2, poll_statuses=["completed"])
    lasting = ScriptedApi(events_path="absent", poll_errors=100)
    with serve(passing) as url, Client(url, poll_interval_s=FAST, reconnect_s=FAST) as mv:
        assert mv.wait(passing.task_id, timeout_s=30).status is TaskStatus.COMPLETED
    with serve(lasting) as url, Client(url, poll_interval_s=FAST, reconnect_s=FAST) as mv:
        with pytest.raises(ApiError) as gave_up:
            mv.wait(lasting.task_id, timeout_s=60)
    assert passing.polls == 3
    assert (gave_up.value.status_code, gave_up.value.detail) == (503, "Service unavailable.")
    assert lasting.polls == 7  # max_failures (6) tolerated, the 7th raised


async def test_async_polling_when_the_events_path_is_absent() -> None:
    api = ScriptedApi(events_path="absent", poll_statuses=["processing", "failed"])
    with serve(api) as url:
        async with AsyncClient(url, poll_interval_s=FAST) as mv:
            final = await mv.wait(api.task_id, timeout_s=30)
    assert final.status is TaskStatus.FAILED


def test_errors_carry_the_apis_status_and_reason(tmp_path: Path) -> None:
    api = ScriptedApi()
    garbage = tmp_path / "visit.m4a"
    garbage.write_bytes(b"garbage bytes, not audio")
    with serve(api) as url, Client(url) as mv:
        with pytest.raises(ApiError) as unknown:
            mv.task(uuid.uuid4())
        with pytest.raises(ApiError) as refused:
            mv.upload(garbage, user_id=USER)
        with pytest.raises(ApiError) as not_yet:
            mv.transcript(api.task_id, "srt")
    assert (unknown.value.status_code, unknown.value.detail) == (404, "No such task.")
    assert refused.value.status_code == 422
    assert refused.value.reason == "The file's content is not a m4a recording."
    assert not_yet.value.detail == "The task has no transcript yet."


def test_upload_reports_progress_and_submit_retries_with_one_key(tmp_path: Path) -> None:
    api = ScriptedApi(submit_failures=2, streams=[[("event", "e1", "completed")]])
    recording = tmp_path / "visit.wav"
    recording.write_bytes(b"RIFF" + bytes(200_000))
    sent: list[tuple[int, int]] = []
    with serve(api) as url, Client(url) as mv:
        stored = mv.upload(recording, user_id=USER, progress=lambda n, t: sent.append((n, t)))
        task_id = mv.submit(stored.file_id, stored.file_extension, user_id=USER)
        mv.wait(task_id, timeout_s=30)
        srt = mv.transcript(task_id, "srt")
    assert stored.file_extension == "wav"  # from the file's suffix
    assert sent[-1] == (200_004, 200_004)
    assert task_id == api.task_id
    assert len(api.idempotency_keys) == 3
    assert len(set(api.idempotency_keys)) == 1
    assert api.idempotency_keys[0]
    assert srt == SRT


def test_user_defaults_to_the_tokens_subject() -> None:
    from tests.fixtures.tokens import hs256

    with Client("http://127.0.0.1:9", hs256("s" * 48, USER)) as mv:
        assert mv.user_id == USER


def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with Client(f"http://127.0.0.1:{port}") as mv, pytest.raises(Unreachable):
            mv.task(uuid.uuid4())
