"""The seed contract: ``POST /process_audio_v2/{user_id}``.

A task id is answered only once Kafka acknowledged the task (its ``queued`` status, then
its AudioSubmitted event). With an ``Idempotency-Key``, a retry after any failure gets the
same task id; see :mod:`producer_api.idempotency`.
"""

import logging
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, NamedTuple

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from pydantic import BaseModel
from starlette.datastructures import State

from medvoice_common import tracing
from medvoice_common.s3_probe import S3ProbeError
from medvoice_common.webhook_url import MAX_URL_LENGTH, CallbackRefused, check_callback
from producer_api import metrics
from producer_api.deps import ActingUserId, UserIdPath
from producer_api.idempotency import (
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    Claim,
    IdempotencyStore,
    request_fingerprint,
)
from producer_api.models import AUTH_RESPONSES, FILE_NAME_PATTERN, ErrorPublic, SubmitPublic
from producer_api.publisher import DispatchError, Publisher
from producer_api.settings import ApiSettings
from producer_api.status_view import StatusView
from producer_api.storage import Storage
from schemas.events import AudioSubmitted
from schemas.ids import ID_PATTERN, AudioExtension, audio_object_key
from schemas.status import TaskStatus

log = logging.getLogger(__name__)
router = APIRouter(tags=["submit"])
NOT_CONFIRMED = "The task could not be confirmed as queued"
RETRY_SAME_KEY = (
    f"{NOT_CONFIRMED}; retry with the same Idempotency-Key (a retry gets this task's id, "
    "never a second task)."
)
MAYBE_RUNNING = (
    f"{NOT_CONFIRMED}; it may still be processed. Send an Idempotency-Key so that a retry "
    "cannot make a second task."
)
NOT_QUEUED = "The task could not be queued; please retry."
IN_PROGRESS = "A request with this Idempotency-Key is still in progress; retry later."
KEY_REUSED = "This Idempotency-Key was used for a different request."


SUBMIT_PATH = "/process_audio_v2/{user_id}"

FileIdQuery = Annotated[str | None, Query(pattern=ID_PATTERN)]
FileNameQuery = Annotated[
    str | None,
    Query(
        max_length=255,
        pattern=FILE_NAME_PATTERN,
        description="the recording's name on the device (no control characters)",
    ),
]
CallbackUrlQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_URL_LENGTH,
        description="an https URL on an allowed host: the final status is POSTed to it, "
        "signed (Standard Webhooks)",
    ),
]
TraceparentHeader = Annotated[str | None, Header(include_in_schema=False)]
IdempotencyKeyHeader = Annotated[str | None, Header(max_length=MAX_KEY_LENGTH, pattern=KEY_PATTERN)]


class Submission(BaseModel):
    """A submission's parameters, validated (the route's and the fast path's one definition)."""

    user_id: UserIdPath
    file_id: FileIdQuery = None
    file_extension: AudioExtension = AudioExtension.M4A
    file_name: FileNameQuery = None
    callback_url: CallbackUrlQuery = None
    traceparent: TraceparentHeader = None
    idempotency_key: IdempotencyKeyHeader = None


class Services(NamedTuple):
    """What a submission uses, from the app's state."""

    settings: ApiSettings
    publisher: Publisher
    storage: Storage
    view: StatusView

    @classmethod
    def of(cls, state: State) -> "Services":
        """The services the lifespan put on ``state``."""
        return cls(state.settings, state.publisher, state.storage, state.status_view)


async def _services(request: Request) -> Services:
    return Services.of(request.app.state)


@router.post(
    SUBMIT_PATH,
    response_model=SubmitPublic,
    responses={
        **AUTH_RESPONSES,
        404: {"description": "No such recording (or none uploaded yet)"},
        409: {"description": "A request with this Idempotency-Key is in progress (Retry-After)"},
        422: {
            "model": ErrorPublic,
            "description": "Invalid parameters, a refused callback_url, or an Idempotency-Key "
            "used for another request",
        },
        503: {"description": "Storage unavailable"},
        500: {"description": "Kafka did not confirm the task; retry (same Idempotency-Key)"},
    },
)
async def process_audio_v2(
    user_id: ActingUserId,
    services: Annotated[Services, Depends(_services)],
    file_id: FileIdQuery = None,
    file_extension: AudioExtension = AudioExtension.M4A,
    file_name: FileNameQuery = None,
    callback_url: CallbackUrlQuery = None,
    traceparent: TraceparentHeader = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> SubmitPublic:
    """Queue an uploaded recording for transcription; without file_id, the latest upload."""
    # Most submissions never reach this function: producer_api.submit_fast_path serves them
    # with the same Submission and submit(); this route answers what it declines.
    submission = Submission.model_construct(  # validated by FastAPI, field by field
        user_id=user_id,
        file_id=file_id,
        file_extension=file_extension,
        file_name=file_name,
        callback_url=callback_url,
        traceparent=traceparent,
        idempotency_key=idempotency_key,
    )
    return await submit(services, submission)


async def submit(services: Services, asked: Submission) -> SubmitPublic:
    """Queue the recording ``asked`` names, for a caller already allowed to act for its user.

    Raises:
        HTTPException: 404 no such recording, 409 the same key in progress, 422 a refused
            callback or a reused key, 500 Kafka did not confirm, 503 storage unavailable.
    """
    user_id, settings = asked.user_id, services.settings
    if asked.callback_url is not None:
        await _check_callback(asked.callback_url, settings)
    found_id, extension, key = await _recording(
        services.storage, user_id, asked.file_id, asked.file_extension
    )
    event = AudioSubmitted(
        task_id=uuid.uuid4(),
        user_id=user_id,
        file_id=found_id,
        file_extension=extension,
        object_key=key,
        file_name=asked.file_name,
        callback_url=asked.callback_url,
    )
    # Every event carries a valid trace context: the caller's, or a fresh one.
    headers = [(tracing.TRACEPARENT, tracing.event_traceparent(asked.traceparent).encode())]
    publisher, view = services.publisher, services.view
    if asked.idempotency_key is None:
        await _publish(publisher, view, event, headers, keyed=False)
        return SubmitPublic(task_id=event.task_id)
    fingerprint = request_fingerprint(
        asked.file_id, asked.file_extension, asked.file_name, asked.callback_url
    )
    store = IdempotencyStore.for_publish_timeout(services.storage, settings.api.publish_timeout_s)
    return await _submit_once(
        _Keyed(store, user_id, asked.idempotency_key, fingerprint),
        publisher,
        view,
        event,
        headers,
        settings.api.status_view_sync_timeout_s,
    )


async def _check_callback(url: str, settings: ApiSettings) -> None:
    """422 with the reason unless ``url`` may be called back (see medvoice_common.webhook_url)."""
    hooks = settings.webhooks
    try:
        await check_callback(url, hooks.hosts, hooks.allow_private)
    except CallbackRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


async def _recording(
    storage: Storage, user_id: str, file_id: str | None, file_extension: AudioExtension
) -> tuple[str, AudioExtension, str]:
    """The recording a submission names (or the user's latest); 404 when there is none."""
    if file_id is None:
        latest = await storage.latest_upload(user_id)
        if latest is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No recording uploaded for this user.")
        return latest.file_id, latest.file_extension, latest.object_key
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
    return file_id, file_extension, key


async def _publish(
    publisher: Publisher,
    view: StatusView,
    event: AudioSubmitted,
    headers: list[tuple[str, bytes]],
    *,
    keyed: bool,
    with_queued: bool = True,
) -> None:
    """Publish the task (``queued`` first, applied to this replica's view once acked)."""
    started = time.perf_counter()
    try:
        await publisher.submit(event, headers, with_queued=with_queued, on_queued=view.apply_own)
    except DispatchError as exc:
        metrics.PUBLISH_FAILURES.inc()
        detail = RETRY_SAME_KEY if keyed else MAYBE_RUNNING if exc.maybe_published else NOT_QUEUED
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail) from exc
    metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
    metrics.EVENTS_PUBLISHED.inc()


class _Keyed(NamedTuple):
    """A submission's idempotency key, where its claim lives, and what it asked for."""

    store: IdempotencyStore
    user_id: str
    key: str
    fingerprint: str


async def _submit_once(
    keyed: _Keyed,
    publisher: Publisher,
    view: StatusView,
    event: AudioSubmitted,
    headers: list[tuple[str, bytes]],
    sync_timeout_s: float,
) -> SubmitPublic:
    """Publish the key's task at most as one task; answer its id once Kafka has it."""
    now = datetime.now(UTC)
    proposal = Claim(
        task_id=event.task_id,
        created_at=event.submitted_at,
        touched_at=now,
        published=False,
        request=keyed.fingerprint,
        file_id=event.file_id,
        file_extension=event.file_extension,
        object_key=event.object_key,
    )
    claimed = await keyed.store.claim(keyed.user_id, keyed.key, proposal)
    claim, with_queued = claimed.claim, True
    if not claimed.mine:
        if claim.request is not None and claim.request != keyed.fingerprint:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, KEY_REUSED)
        if claim.published:
            return SubmitPublic(task_id=claim.task_id)
        wait_s = claim.lease_left_s(keyed.store.lease_s, now)
        taken = None
        if wait_s <= 0:
            taken = await keyed.store.take_over(keyed.user_id, keyed.key, claimed)
        if taken is None:  # its publisher may still be waiting for Kafka, or took it over
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                IN_PROGRESS,
                headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
            )
        claim = taken
        event = _same_task(event, claim)
        # What an earlier try got onto task.status decides what is still to publish: a
        # queued status is never written after a worker's status of the task.
        if not await view.sync(sync_timeout_s):
            raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, RETRY_SAME_KEY)
        known = view.get(str(claim.task_id))
        if known is not None and known.status is not TaskStatus.QUEUED:
            return await _published(keyed, claim)  # a worker has it: the event was acked
        with_queued = known is None
    await _publish(publisher, view, event, headers, keyed=True, with_queued=with_queued)
    return await _published(keyed, claim)


def _same_task(event: AudioSubmitted, claim: Claim) -> AudioSubmitted:
    """The claim's task, as this request publishes it again."""
    return event.model_copy(
        update={
            "task_id": claim.task_id,
            "file_id": claim.file_id or event.file_id,
            "file_extension": claim.file_extension or event.file_extension,
            "object_key": claim.object_key or event.object_key,
            "submitted_at": claim.created_at,
        }
    )


async def _published(keyed: _Keyed, claim: Claim) -> SubmitPublic:
    """Mark the claim published (best effort: a retry finds the task in the view) and answer."""
    try:
        await keyed.store.mark_published(keyed.user_id, keyed.key, claim)
    except Exception:  # noqa: BLE001 - the task exists; a retry resolves it from the view
        log.warning("idempotency claim not marked published", extra={"task_id": claim.task_id})
    return SubmitPublic(task_id=claim.task_id)
