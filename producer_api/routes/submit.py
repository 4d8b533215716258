"""The seed contract: ``POST /process_audio_v2/{user_id}``."""

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status

from medvoice_common import tracing
from medvoice_common.s3_probe import S3ProbeError
from producer_api import metrics
from producer_api.deps import ActingUserId, IdempotencyDep, PublisherDep, StorageDep
from producer_api.idempotency import MAX_KEY_LENGTH
from producer_api.models import AUTH_RESPONSES, FILE_NAME_PATTERN, SubmitPublic
from producer_api.publisher import DispatchError
from schemas.events import AudioSubmitted
from schemas.ids import ID_PATTERN, AudioExtension, audio_object_key

router = APIRouter(tags=["submit"])


@router.post(
    "/process_audio_v2/{user_id}",
    response_model=SubmitPublic,
    responses={
        **AUTH_RESPONSES,
        404: {"description": "No such recording (or none uploaded yet)"},
        503: {"description": "Storage unavailable"},
        500: {"description": "The task could not be dispatched to Kafka"},
    },
)
async def process_audio_v2(
    user_id: ActingUserId,
    publisher: PublisherDep,
    storage: StorageDep,
    idempotency: IdempotencyDep,
    file_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    file_extension: AudioExtension = AudioExtension.M4A,
    file_name: Annotated[
        str | None,
        Query(
            max_length=255,
            pattern=FILE_NAME_PATTERN,
            description="the recording's name on the device (no control characters)",
        ),
    ] = None,
    traceparent: Annotated[str | None, Header(include_in_schema=False)] = None,
    idempotency_key: Annotated[
        str | None, Header(max_length=MAX_KEY_LENGTH, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> SubmitPublic:
    """Queue an uploaded recording for transcription; without file_id, the latest upload."""
    if file_id is None:
        latest = await storage.latest_upload(user_id)
        if latest is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No recording uploaded for this user.")
        file_id, file_extension, key = latest
    else:
        key = audio_object_key(user_id, file_id, file_extension)
        try:
            found = await storage.exists(key)
        except S3ProbeError as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "Storage is unavailable; please retry."
            ) from exc
        if not found:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, "No recording with this file_id and file_extension."
            )
    task_id = uuid.uuid4()
    if idempotency_key is not None:
        task_id, claimed = await idempotency.claim(user_id, idempotency_key, task_id)
        if not claimed:
            return SubmitPublic(task_id=task_id)
    event = AudioSubmitted(
        task_id=task_id,
        user_id=user_id,
        file_id=file_id,
        file_extension=file_extension,
        object_key=key,
        file_name=file_name,
    )
    # Every event carries a valid trace context: the caller's, or a fresh one.
    headers = [(tracing.TRACEPARENT, tracing.event_traceparent(traceparent).encode())]
    started = time.perf_counter()
    try:
        await publisher.submit(event, headers)
    except DispatchError as exc:
        metrics.PUBLISH_FAILURES.inc()
        if idempotency_key is not None:
            await idempotency.release(user_id, idempotency_key)
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc
    metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
    metrics.EVENTS_PUBLISHED.inc()
    return SubmitPublic(task_id=event.task_id)
