"""GET /tasks/{task_id}/events: the real app on a real uvicorn (a free port, this test's
event loop), its real status view (RocksDB store, changes applied as the topic's reader
would), S3 in memory. The stream is read with the client's own SSE parser.

Shown: the current state first, then each change in order with its event id, the body
exactly GET's, the stream closed after the final status; Last-Event-ID resume; keep-alive
comments while idle; 404 for another user's task; the bound on open streams (503 with
Retry-After at N+1, a slot freed by a client that goes away); streams ended by shutdown.
"""

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from prometheus_client import REGISTRY

from medvoice_client.sse import LineSplitter, ServerSentEvent, SSEDecoder
from medvoice_common.settings import CommonSettings
from producer_api.main import create_app
from producer_api.settings import ApiOptions, ApiSettings, AuthSettings
from producer_api.status_store import StatusStore, StoreOptions
from producer_api.status_view import StatusView
from producer_api.streams import StreamSlots
from schemas.events import TaskStatusChanged, TranscriptSummary
from schemas.ids import transcript_object_key
from schemas.status import TaskStatus
from tests.fixtures import tokens
from tests.fixtures.documents import transcript_document
from tests.fixtures.fake_api import FakePublisher, FakeStorage

SECRET = tokens.new_secret()
OWNER, OTHER = "dr_owner", "dr_other"
T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
MAX_STREAMS = 2
KEEPALIVE_S = 0.05  # idle streams send a comment this often here
WAIT_S = 20.0  # bounds every wait of these tests; none is reached when all is well


def auth(user: str = OWNER) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.hs256(SECRET, user)}"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels or None) or 0.0


def ended(end: str) -> float:
    return sample("medvoice_sse_streams_ended_total", end=end)


@dataclass
class Served:
    """The app on a real port, its view and storage, and a client of it."""

    view: StatusView
    storage: FakeStorage
    slots: StreamSlots
    client: httpx.AsyncClient
    task_id: uuid.UUID

    def change(self, status: TaskStatus, dt: int) -> TaskStatusChanged:
        """Apply the task's next status (as read from task.status); returns the record."""
        record = TaskStatusChanged(
            task_id=self.task_id,
            user_id=OWNER,
            file_id="f1",
            status=status,
            submitted_at=T0,
            occurred_at=T0 + timedelta(seconds=dt),
            transcript=self._transcript() if status is TaskStatus.COMPLETED else None,
        )
        self.view.apply(record, record.to_bytes())
        return record

    def _transcript(self) -> TranscriptSummary:
        key = transcript_object_key(OWNER, self.task_id)
        doc = transcript_document(self.task_id, OWNER)
        self.storage.objects[key] = doc.model_dump_json().encode()
        return TranscriptSummary(
            language="en", duration_s=1.0, word_count=2, transcript_uri=f"s3://fake/{key}"
        )

    @asynccontextmanager
    async def stream(
        self, user: str = OWNER, last_event_id: str | None = None
    ) -> AsyncIterator["Stream"]:
        headers = {**auth(user), "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        async with self.client.stream(
            "GET", f"/tasks/{self.task_id}/events", headers=headers
        ) as resp:
            yield Stream(resp)


class Stream:
    """One open response, read line by line with the client's parser."""

    def __init__(self, resp: httpx.Response) -> None:
        self.resp = resp
        self.chunks = resp.aiter_bytes()
        self.splitter = LineSplitter()
        self.decoder = SSEDecoder()
        self.lines: list[str] = []
        self.pending: list[str] = []

    async def _line(self) -> str | None:
        while not self.pending:
            try:
                chunk = await anext(self.chunks)
            except StopAsyncIteration:
                return None
            self.pending.extend(self.splitter.feed(chunk))
        line = self.pending.pop(0)
        self.lines.append(line)
        return line

    async def event(self) -> ServerSentEvent | None:
        """The next event; None when the server ended the stream."""
        async with asyncio.timeout(WAIT_S):
            while (line := await self._line()) is not None:
                if (event := self.decoder.feed(line)) is not None:
                    return event
        return None

    async def comment(self) -> str | None:
        """The next comment line before any event; None when the stream ended."""
        async with asyncio.timeout(WAIT_S):
            while (line := await self._line()) is not None:
                if line.startswith(":"):
                    return line
                assert self.decoder.feed(line) is None, "an event came before a comment"
        return None


async def start_server(app: Any) -> tuple[uvicorn.Server, "asyncio.Task[None]", str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="critical", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(WAIT_S):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, no event
            await asyncio.sleep(0.01)
    return server, serving, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def served(tmp_path: Path, **api: Any) -> AsyncIterator[Served]:
    settings = ApiSettings(
        auth=AuthSettings(hs256_secret=SECRET),
        api=ApiOptions(sse_max_streams=MAX_STREAMS, sse_keepalive_s=KEEPALIVE_S, **api),
    )
    app = create_app(settings)
    storage = FakeStorage()
    view = StatusView(
        CommonSettings(),
        StatusStore(tmp_path / "status", StoreOptions(1 << 20, 1 << 20), timedelta(days=365)),
    )
    app.state.storage, app.state.publisher, app.state.status_view = storage, FakePublisher(), view
    server, serving, url = await start_server(app)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=WAIT_S) as client:
            yield Served(view, storage, app.state.sse_slots, client, uuid.uuid4())
    finally:
        server.should_exit = True
        await serving
        await view.stop()  # its consumer never started; this closes the store


async def wait_open(slots: StreamSlots, count: int) -> None:
    async with asyncio.timeout(WAIT_S):
        while slots.open != count:  # noqa: ASYNC110 - the server's task frees it; no event
            await asyncio.sleep(0.01)


async def get_text(s: Served, user: str = OWNER) -> httpx.Response:
    return await s.client.get(f"/tasks/{s.task_id}", headers=auth(user))


async def test_statuses_arrive_in_order_with_ids_and_the_stream_closes_after_completed(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as s:
        records = [s.change(TaskStatus.QUEUED, 0)]
        messages, finals = sample("medvoice_sse_messages_total"), ended("final")
        events: list[ServerSentEvent] = []
        bodies: list[str] = []
        async with s.stream() as stream:
            assert stream.resp.status_code == 200
            assert stream.resp.headers["content-type"].startswith("text/event-stream")
            assert stream.resp.headers["cache-control"] == "no-cache"
            for status, dt in ((None, 0), (TaskStatus.PROCESSING, 1), (TaskStatus.COMPLETED, 2)):
                if status is not None:
                    records.append(s.change(status, dt))
                event = await stream.event()
                assert event is not None
                events.append(event)
                bodies.append((await get_text(s)).text)  # GET's body at that moment
            assert await stream.event() is None, "the stream closes after completed"
        assert [e.id for e in events] == [str(r.event_id) for r in records]
        assert [e.event for e in events] == ["status"] * 3
        assert [e.data for e in events] == bodies, "each message's data is exactly GET's body"
        assert [json.loads(e.data)["status"] for e in events] == [
            "queued",
            "processing",
            "completed",
        ]
        assert json.loads(events[-1].data)["transcript"]["text"] == "hello there"
        await wait_open(s.slots, 0)
        assert sample("medvoice_sse_messages_total") == messages + 3
        assert ended("final") == finals + 1


async def test_last_event_id_resumes_after_it(tmp_path: Path) -> None:
    async with served(tmp_path) as s:
        queued = s.change(TaskStatus.QUEUED, 0)
        processing = s.change(TaskStatus.PROCESSING, 1)
        # An id older than the current record's: the current state at once.
        async with s.stream(last_event_id=str(queued.event_id)) as stream:
            event = await stream.event()
            assert event is not None
            assert event.id == str(processing.event_id)
        # The current record's own id: nothing is re-sent (keep-alives only) until a change.
        async with s.stream(last_event_id=str(processing.event_id)) as stream:
            assert await stream.comment() == ": keep-alive"
            assert await stream.comment() == ": keep-alive"
            done = s.change(TaskStatus.COMPLETED, 2)
            event = await stream.event()
            assert event is not None
            assert event.id == str(done.event_id)
            assert json.loads(event.data)["status"] == "completed"
            assert await stream.event() is None


async def test_another_users_task_is_404_and_no_token_is_401(tmp_path: Path) -> None:
    async with served(tmp_path) as s:
        s.change(TaskStatus.QUEUED, 0)
        async with s.stream(user=OTHER) as stream:
            assert stream.resp.status_code == 404
            assert (await stream.resp.aread()) == (await get_text(s, OTHER)).content
        resp = await s.client.get(f"/tasks/{s.task_id}/events")
        assert resp.status_code == 401
        assert s.slots.open == 0


async def test_the_bound_refuses_with_retry_after_and_a_departed_client_frees_its_slot(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as s:
        s.change(TaskStatus.QUEUED, 0)
        refused, by_client = sample("medvoice_sse_streams_refused_total"), ended("client")
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(s.stream()) for _ in range(MAX_STREAMS)]
            for stream in streams:
                assert await stream.event() is not None
            assert s.slots.open == MAX_STREAMS
            assert sample("medvoice_sse_streams_open") >= MAX_STREAMS
            over = await s.client.get(f"/tasks/{s.task_id}/events", headers=auth())
            assert over.status_code == 503
            assert int(over.headers["retry-after"]) > 0
            assert "Too many open event streams" in over.json()["detail"]
            assert sample("medvoice_sse_streams_refused_total") == refused + 1
            async with s.client.stream(
                "GET", f"/tasks/{s.task_id}/events", headers=auth()
            ) as extra:  # a client that opens a stream and goes away before reading it
                assert extra.status_code == 503
            await streams[0].resp.aclose()  # a client goes away mid-stream
            await wait_open(s.slots, MAX_STREAMS - 1)
            assert ended("client") == by_client + 1
            async with s.stream() as again:
                assert again.resp.status_code == 200
                assert await again.event() is not None
        await wait_open(s.slots, 0)


async def test_shutdown_ends_open_streams_cleanly_and_refuses_new_ones(tmp_path: Path) -> None:
    async with served(tmp_path) as s:
        s.change(TaskStatus.QUEUED, 0)
        shutdowns = ended("shutdown")
        async with s.stream() as stream:
            assert await stream.event() is not None
            s.slots.close()  # what the SIGTERM handler does
            assert await stream.event() is None, "ended with the chunked terminator, no error"
        await wait_open(s.slots, 0)
        assert ended("shutdown") == shutdowns + 1
        resp = await s.client.get(f"/tasks/{s.task_id}/events", headers=auth())
        assert resp.status_code == 503
        assert s.slots.open == 0


async def test_an_erased_task_ends_its_stream(tmp_path: Path) -> None:
    async with served(tmp_path) as s:
        s.change(TaskStatus.QUEUED, 0)
        removed = ended("removed")
        async with s.stream() as stream:
            assert await stream.event() is not None
            s.view.remove(s.task_id)
            assert await stream.event() is None
        await wait_open(s.slots, 0)
        assert ended("removed") == removed + 1
