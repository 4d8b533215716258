"""GET /tasks/{task_id}/events on the real broker, two API processes of one deployment and
the real worker (whisper tiny.en).

Shown: a task streamed on the replica that took it, and another streamed on the second
replica, each receives queued, processing, completed in order with their records' event
ids, the data exactly GET's body, and the stream closes after completed; Last-Event-ID of
the first message gets only what came later; another user's task and an unknown one are
404 on both replicas; SIGTERM ends an open stream cleanly at once, though the replica's
shutdown grace is far longer than the test waits.
"""

import json
import signal
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from medvoice_client.sse import ServerSentEvent, SSEDecoder, iter_events
from tests.fixtures.audio import spoken_clip
from tests.fixtures.processes import ManagedProcess
from tests.fixtures.stack import StackConfig, start_api, start_worker

pytestmark = pytest.mark.integration

USER, OTHER = "dr_sse-01", "dr_sse-02"
SENTENCE = "Blood pressure is normal today."
STREAM_TIMEOUT_S = 180.0  # a read of a stream; far beyond a normal transcription
LONG_GRACE_S = "300"  # replica B's shutdown grace: streams must not wait for it
TERMINATE_WAIT_S = 60.0


@dataclass
class Deployment:
    """Two API replicas (A, B) of one deployment; the worker starts when a test asks."""

    cfg: StackConfig
    clip: bytes
    procs: list[ManagedProcess] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    worker: ManagedProcess | None = None
    first_events: dict[str, list[ServerSentEvent]] = field(default_factory=dict)

    def client(self, replica: int, user: str = USER) -> httpx.Client:
        return self.cfg.client(self.urls[replica], user, admin=False)

    def submit(self, replica: int) -> str:
        """Upload the clip and submit it on ``replica``; returns the task id."""
        with self.client(replica) as api:
            up = api.post(f"/uploads/{USER}", files={"file": ("visit.m4a", self.clip)})
            assert up.status_code == 201, up.text
            resp = api.post(f"/process_audio_v2/{USER}", params={"file_id": up.json()["file_id"]})
            assert resp.status_code == 200, resp.text
            task_id: str = resp.json()["task_id"]
            return task_id

    def start_worker(self) -> None:
        if self.worker is None:
            self.worker, _ = start_worker(self.cfg)

    def close(self) -> None:
        for proc in [*self.procs, *([self.worker] if self.worker else [])]:
            proc.terminate()


@pytest.fixture(scope="module")
def deployment(
    kafka_broker: Any, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    work = tmp_path_factory.mktemp("sse")
    cfg = StackConfig(kafka_broker.bootstrap, s3_endpoint, work)
    d = Deployment(cfg, spoken_clip(SENTENCE, "m4a", work))
    try:
        for env in ({}, {"MEDVOICE_API__SHUTDOWN_GRACE_S": LONG_GRACE_S}):
            proc, url = start_api(cfg, MEDVOICE_API__SSE_KEEPALIVE_S="1", **env)
            d.procs.append(proc)
            d.urls.append(url)
        yield d
    finally:
        d.close()


class Reader:
    """An open events response, read event by event (keep-alive comments skipped)."""

    def __init__(self, resp: httpx.Response) -> None:
        self.resp = resp
        self.decoder = SSEDecoder()
        self.events = iter_events(resp.iter_bytes(), self.decoder)

    def next(self) -> ServerSentEvent | None:
        """The next event, or None once the server closed the stream."""
        return next(self.events, None)


def follow(
    api: httpx.Client, task_id: str, last_event_id: str | None = None
) -> AbstractContextManager[httpx.Response]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    timeout = httpx.Timeout(STREAM_TIMEOUT_S, connect=10.0)
    return api.stream("GET", f"/tasks/{task_id}/events", headers=headers, timeout=timeout)


def status_of(event: ServerSentEvent) -> str:
    status: str = json.loads(event.data)["status"]
    return status


def test_both_replicas_stream_queued_processing_completed_then_close(
    deployment: Deployment,
) -> None:
    d = deployment
    # Both tasks are submitted on A before any worker runs: each stream starts at queued.
    on_a, on_b = d.submit(0), d.submit(0)
    with d.client(0) as api_a, d.client(1) as api_b:
        with follow(api_a, on_a) as resp_a, follow(api_b, on_b) as resp_b:
            assert resp_a.status_code == 200
            assert resp_b.status_code == 200, "the other replica finds the task (read-your-writes)"
            assert resp_a.headers["content-type"].startswith("text/event-stream")
            readers = {on_a: Reader(resp_a), on_b: Reader(resp_b)}
            for task_id, reader in readers.items():
                first = reader.next()
                assert first is not None
                assert status_of(first) == "queued"
                d.first_events[task_id] = [first]
            d.start_worker()
            for task_id, reader in readers.items():
                while (event := reader.next()) is not None:
                    d.first_events[task_id].append(event)
        # After the streams: GET's body now is the last message's data, byte for byte.
        for task_id, api in ((on_a, api_a), (on_b, api_b)):
            events = d.first_events[task_id]
            assert [status_of(e) for e in events] == ["queued", "processing", "completed"]
            assert [e.event for e in events] == ["status"] * 3
            ids = [e.id for e in events]
            assert all(ids) and len(set(ids)) == 3, ids
            assert events[-1].data == api.get(f"/tasks/{task_id}").text
            assert "pressure" in json.loads(events[-1].data)["transcript"]["text"].lower()


def test_last_event_id_of_the_first_message_gets_only_later_ones(
    deployment: Deployment,
) -> None:
    d = deployment
    assert d.first_events, "runs after the streaming test (same module)"
    task_id, events = next(iter(d.first_events.items()))
    for replica in (0, 1):
        with d.client(replica) as api, follow(api, task_id, events[0].id) as resp:
            assert resp.status_code == 200
            reader = Reader(resp)
            got = []
            while (event := reader.next()) is not None:
                got.append(event)
        # The view keeps a task's latest record: what came after `queued` is `completed` now.
        assert [(e.id, e.data) for e in got] == [(events[-1].id, events[-1].data)]


def test_another_users_task_and_an_unknown_task_are_404_on_both_replicas(
    deployment: Deployment,
) -> None:
    d = deployment
    assert d.first_events
    task_id = next(iter(d.first_events))
    for replica in (0, 1):
        with d.client(replica, OTHER) as other:
            theirs = other.get(f"/tasks/{task_id}/events")
            unknown = other.get(f"/tasks/{uuid.uuid4()}/events")
        assert theirs.status_code == 404
        assert unknown.status_code == 404
        assert theirs.json() == unknown.json() == {"detail": "No such task."}


def test_sigterm_ends_an_open_stream_cleanly_without_waiting_for_the_grace(
    deployment: Deployment,
) -> None:
    d = deployment
    assert d.first_events
    task_id, events = list(d.first_events.items())[-1]
    replica_b = d.procs[1]
    with d.client(1) as api, follow(api, task_id, events[-1].id) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        assert next(lines) == ": keep-alive", "open and idle: its last message was the final one"
        replica_b.proc.send_signal(signal.SIGTERM)
        rest = list(lines)  # a clean end (chunked terminator); a cut-off raises here
    assert all(line in ("", ": keep-alive") for line in rest), rest
    replica_b.proc.wait(TERMINATE_WAIT_S)  # far less than its grace of LONG_GRACE_S
    log = replica_b.log_text()
    assert "timeout graceful shutdown exceeded" not in log
