"""Getting recordings in: multipart upload and presigned PUT URLs."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from starlette.datastructures import UploadFile

from medvoice_common.audio_format import HEAD_BYTES, looks_like, probe_duration_s
from producer_api.deps import ActingUserId, SettingsDep, StorageDep, UploadedFile
from producer_api.models import AUTH_RESPONSES, ErrorPublic, PresignPublic, UploadPublic
from schemas.ids import AudioExtension

router = APIRouter(prefix="/uploads", tags=["uploads"], responses={**AUTH_RESPONSES})
FILE_PART = {"type": "string", "format": "binary", "description": "the recording"}
MULTIPART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": FILE_PART},
                }
            }
        },
    }
}


def _extension_of(upload: UploadFile, given: AudioExtension | None) -> AudioExtension:
    if given is not None:
        return given
    name = upload.filename or ""
    suffix = name.rpartition(".")[2].lower() if "." in name else ""
    try:
        return AudioExtension(suffix)
    except ValueError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Unsupported or missing file extension; give file_extension "
            f"(one of {', '.join(e.value for e in AudioExtension)}).",
        ) from exc


@router.post(
    "/{user_id}",
    response_model=UploadPublic,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=MULTIPART_BODY,
    responses={
        400: {"model": ErrorPublic, "description": "Not a readable multipart body"},
        413: {"model": ErrorPublic, "description": "The file or its duration is over the limit"},
        422: {"model": ErrorPublic, "description": "No file, or not audio of a known format"},
    },
)
async def upload_audio(
    user_id: ActingUserId,
    file: UploadedFile,
    storage: StorageDep,
    settings: SettingsDep,
    file_extension: Annotated[AudioExtension | None, Query()] = None,
) -> UploadPublic:
    """Store a recording in S3 and return its file_id."""
    extension = _extension_of(file, file_extension)
    limit = settings.api.max_upload_bytes
    if file.size is not None and file.size > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"The file is over the {limit}-byte limit."
        )
    head = await file.read(HEAD_BYTES)
    if not looks_like(extension, head):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"The file's content is not a {extension.value} recording.",
        )
    await file.seek(0)
    duration = await asyncio.to_thread(probe_duration_s, file.file, extension)
    if duration is not None and duration > settings.api.max_audio_s:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"The recording lasts {duration:.0f} s; at most {settings.api.max_audio_s:.0f} s "
            "are accepted.",
        )
    stored = await storage.put_audio(
        user_id, extension, file.file, file.content_type or "application/octet-stream"
    )
    return UploadPublic(**stored._asdict())


@router.post("/{user_id}/presign", response_model=PresignPublic)
async def presign_upload(
    user_id: ActingUserId,
    storage: StorageDep,
    settings: SettingsDep,
    file_extension: AudioExtension = AudioExtension.M4A,
) -> PresignPublic:
    """A short-lived presigned PUT URL for a new recording of this user."""
    expires = settings.api.presign_expiry_s
    stored, url, headers = storage.presign_put(user_id, file_extension, expires)
    return PresignPublic(**stored._asdict(), url=url, headers=headers, expires_in_s=expires)
