"""Task status and transcripts."""

import uuid
from typing import Annotated

from aiokafka.errors import KafkaError
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, HTTPException, Query, Response, status

from producer_api.deps import CallerDep, PublisherDep, SettingsDep, StatusViewDep, StorageDep
from producer_api.erase import erase
from producer_api.models import (
    AUTH_RESPONSES,
    ErasePublic,
    TaskPublic,
    TaskSummaryPublic,
    TranscriptPublic,
)
from producer_api.storage import Storage
from schemas.events import TaskStatusChanged
from schemas.exports import MEDIA_TYPES, ExportFormat, render
from schemas.ids import transcript_object_key
from schemas.status import TaskStatus
from schemas.transcript import TranscriptDocument

router = APIRouter(
    prefix="/tasks",
    tags=["tasks"],
    responses={401: AUTH_RESPONSES[401], 404: {"description": "No such task of yours"}},
)
NOT_FOUND = "No such task."
STILL_RUNNING = "The task is still being processed; erase it once it has completed or failed."
ERASE_RETRY_S = 10


async def lookup(
    view: StatusViewDep, caller: CallerDep, settings: SettingsDep, task_id: uuid.UUID
) -> TaskStatusChanged:
    """The caller's task as this replica's view holds it (after a read-your-writes sync).

    Raises:
        HTTPException: 404 when unknown here or another user's (its existence not disclosed).
    """
    change = view.get(str(task_id))
    if change is None:  # perhaps answered by another replica a moment ago: read up to now
        await view.sync(settings.api.status_view_sync_timeout_s)
        change = view.get(str(task_id))
    # Another user's task is "not found", not "forbidden": its existence is not disclosed.
    if change is None or not caller.may_act_for(change.user_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return change


async def _document(storage: StorageDep, change: TaskStatusChanged) -> bytes:
    if change.status is not TaskStatus.COMPLETED:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "The task has no transcript yet.")
    body = await storage.get_json(transcript_object_key(change.user_id, change.task_id))
    if body is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "The transcript is no longer stored.")
    return body


@router.get("/{task_id}", response_model=TaskPublic)
async def get_task(
    task_id: uuid.UUID,
    caller: CallerDep,
    view: StatusViewDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> TaskPublic:
    """A task's status, with its transcript text when completed."""
    return await task_public(storage, await lookup(view, caller, settings, task_id))


async def task_public(storage: Storage, change: TaskStatusChanged) -> TaskPublic:
    """The body of GET /tasks/{task_id} for ``change`` (the events stream sends it too).

    Raises:
        HTTPException: 404 when the task is completed but its transcript is no longer stored.
    """
    transcript = None
    if change.status is TaskStatus.COMPLETED and change.transcript is not None:
        doc = TranscriptDocument.model_validate_json(await _document(storage, change))
        transcript = TranscriptPublic(**change.transcript.model_dump(), text=doc.text)
    # The same fields as a list row, with the transcript's text added when completed.
    fields = {**dict(TaskSummaryPublic.of(change)), "transcript": transcript}
    return TaskPublic(**fields)


@router.get(
    "/{task_id}/transcript",
    response_class=Response,
    responses={
        200: {
            "content": {media_type.split(";")[0]: {} for media_type in MEDIA_TYPES.values()},
            "description": "The TranscriptDocument (json), its text (txt) or subtitles (srt, vtt)",
        }
    },
)
async def get_transcript(
    task_id: uuid.UUID,
    caller: CallerDep,
    view: StatusViewDep,
    storage: StorageDep,
    settings: SettingsDep,
    fmt: Annotated[
        ExportFormat,
        Query(
            alias="format",
            description="json: the document; txt: its text; srt, vtt: subtitles of its segments",
        ),
    ] = ExportFormat.JSON,
) -> Response:
    """The full transcript document (segments, words with times), or an export of it."""
    body = await _document(storage, await lookup(view, caller, settings, task_id))
    if fmt is ExportFormat.JSON:
        return Response(content=body, media_type=MEDIA_TYPES[fmt])
    doc = TranscriptDocument.model_validate_json(body)
    return Response(content=render(doc, fmt).encode(), media_type=MEDIA_TYPES[fmt])


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasePublic,
    responses={
        409: {"description": "The task is still queued or processing"},
        503: {"description": "S3 or Kafka did not take the erase; retry"},
    },
)
async def erase_task(
    task_id: uuid.UUID,
    caller: CallerDep,
    view: StatusViewDep,
    storage: StorageDep,
    publisher: PublisherDep,
    settings: SettingsDep,
) -> ErasePublic:
    """Erase a finished task: its recording, its transcript and its status.

    The task then reads 404 on every replica (once each has read the tombstone: normally
    within milliseconds). Events already on ``transcript.ready`` are not recalled.
    """
    change = await lookup(view, caller, settings, task_id)
    if not change.status.is_final:
        raise HTTPException(
            status.HTTP_409_CONFLICT, STILL_RUNNING, headers={"Retry-After": str(ERASE_RETRY_S)}
        )
    try:
        await erase(change, storage, publisher, view)
    except (OSError, TimeoutError, KafkaError, BotoCoreError, ClientError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The erase could not be completed; retry.",
            headers={"Retry-After": str(ERASE_RETRY_S)},
        ) from exc
    return ErasePublic(task_id=task_id)
