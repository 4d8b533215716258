"""A small real HTTP server (Starlette on uvicorn, in a thread) that plays the API's part in
scripted ways: SSE streams that drop or close early, an events path that is absent, refusals.

It records what the client sent (Last-Event-ID, Idempotency-Key, polls), so tests can
assert on the client's behaviour over real sockets.
"""

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
USER = "dr_client-01"
SRT = "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
STARTUP_S = 10.0


class DroppedConnection(Exception):
    """Raised inside a streaming body: uvicorn aborts the connection mid-response."""


def task_body(task_id: uuid.UUID, status: str, step: int, **extra: Any) -> dict[str, Any]:
    """A TaskPublic body in ``status`` (``step`` orders updated_at)."""
    body: dict[str, Any] = {
        "task_id": str(task_id),
        "user_id": USER,
        "file_id": "f1",
        "status": status,
        "submitted_at": T0.isoformat(),
        "updated_at": (T0 + timedelta(seconds=step)).isoformat(),
        "attempt": 1,
    }
    if status == "completed":
        body["transcript"] = {
            "language": "en",
            "duration_s": 1.5,
            "word_count": 2,
            "transcript_uri": "s3://b/t.json",
            "text": "Hello there.",
        }
    if status == "failed":
        body["error"] = {"code": "audio_undecodable", "message": "It could not be decoded."}
    return {**body, **extra}


Action = tuple[Any, ...]
"""One step of a scripted stream: ("event", id, status), ("comment",), ("retry", ms),
("drop",) (abort the connection), ("close",) (end the response cleanly)."""


@dataclass
class ScriptedApi:
    """The API's part; ``streams`` is one script per events connection, in order."""

    task_id: uuid.UUID = field(default_factory=uuid.uuid4)
    events_path: str = "sse"  # "sse", or "absent" (404), or "post-only" (405)
    streams: list[list[Action]] = field(default_factory=list)
    poll_statuses: list[str] = field(default_factory=list)  # one per poll, last repeats
    submit_failures: int = 0  # answer 500 to this many submissions first
    list_route: bool = False  # serve GET /users/{user_id}/tasks
    poll_errors: int = 0  # answer 503 to this many polls first
    transcript_gone: bool = False  # a completed task whose transcript is no longer stored
    busy_streams: int = 0  # answer 503 + Retry-After to this many events requests first
    last_event_ids: list[str | None] = field(default_factory=list)
    idempotency_keys: list[str | None] = field(default_factory=list)
    polls: int = 0
    current: str = "queued"
    step: int = 0

    def app(self) -> Starlette:
        routes = [
            Route("/tasks/{task_id}", self.get_task),
            Route("/tasks/{task_id}/transcript", self.transcript),
            Route("/uploads/{user_id}", self.upload, methods=["POST"]),
            Route("/process_audio_v2/{user_id}", self.submit, methods=["POST"]),
        ]
        if self.list_route:
            routes.append(Route("/users/{user_id}/tasks", self.list_tasks))
        if self.events_path == "sse":
            routes.append(Route("/tasks/{task_id}/events", self.events))
        elif self.events_path == "post-only":
            routes.append(Route("/tasks/{task_id}/events", self.events, methods=["POST"]))
        return Starlette(routes=routes)

    def _known(self, request: Request) -> bool:
        task_id: str = request.path_params["task_id"]
        return task_id == str(self.task_id)

    async def get_task(self, request: Request) -> Response:
        if not self._known(request):
            return JSONResponse({"detail": "No such task."}, status_code=404)
        self.polls += 1
        if self.polls <= self.poll_errors:
            return JSONResponse({"detail": "Service unavailable."}, status_code=503)
        if self.poll_statuses:
            status = self.poll_statuses[min(self.polls - 1, len(self.poll_statuses) - 1)]
            if status != self.current:  # updated_at moves only with a change, as in the API
                self.current, self.step = status, self.step + 1
        return JSONResponse(task_body(self.task_id, self.current, self.step))

    async def events(self, request: Request) -> Response:
        if not self._known(request):
            return JSONResponse({"detail": "No such task."}, status_code=404)
        self.last_event_ids.append(request.headers.get("last-event-id"))
        if len(self.last_event_ids) <= self.busy_streams:
            return JSONResponse(
                {"detail": "Too many open streams."}, status_code=503, headers={"Retry-After": "0"}
            )
        script = self.streams.pop(0) if self.streams else [("close",)]
        return StreamingResponse(self._play(script), media_type="text/event-stream")

    async def _play(self, script: list[Action]) -> AsyncIterator[bytes]:
        for action in script:
            kind = action[0]
            if kind == "event":
                _, event_id, status = action
                self.step += 1
                self.current = status
                body = task_body(self.task_id, status, self.step)
                yield f"id: {event_id}\nevent: status\ndata: {json.dumps(body)}\n\n".encode()
            elif kind == "comment":
                yield b": keep-alive\n\n"
            elif kind == "retry":
                yield f"retry: {action[1]}\n\n".encode()
            elif kind == "drop":
                await asyncio.sleep(0)  # let the bytes before it go out
                raise DroppedConnection
            elif kind == "close":
                return

    async def list_tasks(self, request: Request) -> Response:
        body = task_body(self.task_id, self.current, self.step)
        body.pop("transcript", None)
        cursor = None if request.query_params.get("cursor") else "next-page"
        return JSONResponse({"tasks": [body], "next_cursor": cursor})

    async def transcript(self, request: Request) -> Response:
        if self.current != "completed":
            return JSONResponse({"detail": "The task has no transcript yet."}, status_code=404)
        if self.transcript_gone:
            return JSONResponse({"detail": "The transcript is no longer stored."}, status_code=404)
        return PlainTextResponse(SRT, media_type="application/x-subrip; charset=utf-8")

    async def upload(self, request: Request) -> Response:
        form = await request.form()
        upload = form["file"]
        assert not isinstance(upload, str)
        head = await upload.read(8)
        if head.startswith(b"garbage"):
            return JSONResponse(
                {"detail": "The file's content is not a m4a recording."}, status_code=422
            )
        ext = request.query_params.get("file_extension", "m4a")
        body = {"file_id": "f1", "file_extension": ext, "object_key": f"audio/u/f1.{ext}"}
        return JSONResponse(body, status_code=201)

    async def submit(self, request: Request) -> Response:
        self.idempotency_keys.append(request.headers.get("idempotency-key"))
        if len(self.idempotency_keys) <= self.submit_failures:
            return JSONResponse({"detail": "The task could not be confirmed"}, status_code=500)
        return JSONResponse({"message": "started", "task_id": str(self.task_id)})


@contextmanager
def serve(api: ScriptedApi) -> Iterator[str]:
    """Run ``api`` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        api.app(), log_level="critical", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the scripted API did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
