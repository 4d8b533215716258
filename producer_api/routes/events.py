"""``GET /tasks/{task_id}/events``: a task's status changes as Server-Sent Events.

Each message is one status change as this replica's view holds it (``id``: the record's
event_id; ``event: status``; ``data``: the body ``GET /tasks/{task_id}`` returns at that
moment). The first is the current state, unless ``Last-Event-ID`` names it; the stream
closes after a final status. While nothing changes, a ``: keep-alive`` comment goes out
every ``MEDVOICE_API__SSE_KEEPALIVE_S``. A stream waits on the view's change notification
(:meth:`StatusView.next_change`), never by polling; it ends as soon as the client goes away
or the server shuts down (:mod:`producer_api.streams`), and gives its slot back.
"""

import asyncio
import contextlib
import enum
import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from starlette.types import Message, Receive, Scope, Send

from producer_api import metrics
from producer_api.deps import CallerDep, SettingsDep, StatusViewDep, StorageDep
from producer_api.models import AUTH_RESPONSES, TaskPublic
from producer_api.routes.tasks import lookup, task_public
from producer_api.status_view import StatusView
from producer_api.storage import Storage
from producer_api.streams import StreamSlots
from schemas.events import TaskStatusChanged

log = logging.getLogger(__name__)
router = APIRouter(prefix="/tasks", tags=["tasks"])
BUSY = "Too many open event streams on this replica; retry later or poll GET /tasks/{task_id}."
BUSY_RETRY_S = 5
KEEPALIVE = b": keep-alive\n\n"


class Tick(enum.Enum):
    """What a wait for the next change ended with, other than a change."""

    KEEPALIVE = "keepalive"
    SHUTDOWN = "shutdown"


def message(task: TaskPublic, event_id: uuid.UUID) -> bytes:
    """One SSE message (the JSON body is one line: JSON escapes every line break)."""
    return f"id: {event_id}\nevent: status\ndata: {task.model_dump_json()}\n\n".encode()


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone away."""
    while (await receive())["type"] != "http.disconnect":
        pass


class TaskEventStream(Response):
    """The response of one stream; it holds one of ``slots`` until it ends."""

    media_type = "text/event-stream"

    def __init__(
        self,
        view: StatusView,
        storage: Storage,
        slots: StreamSlots,
        task_id: uuid.UUID,
        last_event_id: str | None,
        keepalive_s: float,
    ) -> None:
        """A stream of ``task_id``'s changes after ``last_event_id`` (None: from its current)."""
        self.view = view
        self.storage = storage
        self.slots = slots
        self.task_id = str(task_id)
        self.after = last_event_id
        self.keepalive_s = keepalive_s
        self.status_code = status.HTTP_200_OK
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream until a final status, the client's departure or shutdown; free the slot."""
        end = "error"
        try:
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            await send(start)
            pump = asyncio.ensure_future(self._pump(send))
            gone = asyncio.ensure_future(_disconnected(receive))
            try:
                await asyncio.wait((pump, gone), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (pump, gone):
                    task.cancel()
                await asyncio.gather(pump, gone, return_exceptions=True)
            end = "client" if pump.cancelled() else pump.result()
        except asyncio.CancelledError:
            end = "shutdown"  # uvicorn's grace period ran out (or the server was killed)
            raise
        finally:
            self.slots.release(end)

    async def _pump(self, send: Send) -> str:
        """Send messages and keep-alives; returns how the stream ended."""
        after = self.after
        end = "final"
        while True:
            got = await self._next(after)
            if got is Tick.KEEPALIVE:
                await send(_body(KEEPALIVE))
                continue
            if got is Tick.SHUTDOWN or got is None:  # None: erased or expired meanwhile
                end = "shutdown" if got is Tick.SHUTDOWN else "removed"
                break
            try:
                task = await task_public(self.storage, got)
            except HTTPException:  # completed, but its transcript is no longer stored
                end = "removed"
                break
            await send(_body(message(task, got.event_id)))
            metrics.SSE_MESSAGES.inc()
            after = str(got.event_id)
            if got.status.is_final:
                break
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return end

    async def _next(self, after: str | None) -> TaskStatusChanged | Tick | None:
        """The task's next record after ``after``, or a keep-alive tick, or shutdown."""
        if self.slots.closing.is_set():
            return Tick.SHUTDOWN
        change = asyncio.ensure_future(self.view.next_change(self.task_id, after))
        closing = asyncio.ensure_future(self.slots.closing.wait())
        try:
            done, _ = await asyncio.wait(
                (change, closing), timeout=self.keepalive_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (change, closing):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(change, closing)
        if change in done:
            return change.result()
        return Tick.SHUTDOWN if closing in done else Tick.KEEPALIVE


def _body(chunk: bytes) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": True}


@router.get(
    "/{task_id}/events",
    status_code=status.HTTP_200_OK,
    response_class=TaskEventStream,
    responses={
        200: {"description": "`event: status` messages, `data`: the task as GET returns it"},
        401: AUTH_RESPONSES[401],
        404: {"description": "No such task of yours"},
        503: {"description": "Too many open streams on this replica; see Retry-After"},
    },
)
async def task_events(
    task_id: uuid.UUID,
    request: Request,
    caller: CallerDep,
    view: StatusViewDep,
    storage: StorageDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str | None, Header(description="The id of the last message received: resume after it")
    ] = None,
) -> TaskEventStream:
    """The task's status changes as Server-Sent Events, up to its final status."""
    await lookup(view, caller, settings, task_id)  # 404 exactly as GET /tasks/{task_id}
    slots: StreamSlots = request.app.state.sse_slots
    if not slots.acquire():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, BUSY, headers={"Retry-After": str(BUSY_RETRY_S)}
        )
    return TaskEventStream(
        view, storage, slots, task_id, last_event_id, settings.api.sse_keepalive_s
    )
