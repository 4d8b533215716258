"""A user's tasks: newest first, from the status view's per-user index."""

import base64
import binascii
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AwareDatetime

from producer_api.deps import ActingUserId, StatusViewDep
from producer_api.models import AUTH_RESPONSES, ErrorPublic, TaskListPublic, TaskSummaryPublic
from producer_api.status_store import CURSOR_BYTES, micros
from schemas.status import TaskStatus

router = APIRouter(prefix="/users", tags=["tasks"], responses={**AUTH_RESPONSES})
MAX_LIMIT = 100
MAX_SCANNED = 1000  # index rows read per request at most (a selective status filter)
BAD_CURSOR = "The cursor is not one this API returned."


def _encode_cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> bytes | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, BAD_CURSOR) from exc
    if len(raw) != CURSOR_BYTES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, BAD_CURSOR)
    return raw


@router.get(
    "/{user_id}/tasks",
    response_model=TaskListPublic,
    responses={
        422: {
            "model": ErrorPublic,
            "description": "Invalid parameters, or a cursor this API did not return",
        }
    },
)
async def list_tasks(
    user_id: ActingUserId,
    view: StatusViewDep,
    status_: Annotated[
        list[TaskStatus] | None,
        Query(alias="status", description="only tasks in these statuses (repeatable)"),
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="only tasks submitted at or after this time")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> TaskListPublic:
    """The user's tasks, newest submission first, a page at a time.

    A page may hold fewer than ``limit`` tasks while ``next_cursor`` is set (a status filter
    that matches few tasks: at most 1000 are examined per request); follow the cursor until
    it is null.
    """
    wanted = set(status_) if status_ else None
    since_us = None if since is None else micros(since)
    picked: list[uuid.UUID] = []
    last: bytes | None = None
    scanned, more = 0, False
    for entry in view.user_tasks(user_id, _decode_cursor(cursor)):
        if since_us is not None and entry.submitted_us < since_us:
            break  # newest first: every later row is older still
        if len(picked) == limit or scanned == MAX_SCANNED:
            more = True
            break
        scanned += 1
        last = entry.cursor
        if wanted is None or entry.status in wanted:
            picked.append(entry.task_id)
    tasks = [TaskSummaryPublic.of(c) for c in view.records(picked) if c is not None]
    return TaskListPublic(
        tasks=tasks, next_cursor=_encode_cursor(last) if more and last is not None else None
    )
