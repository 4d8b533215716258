"""Identifier patterns, the audio formats accepted, and the S3 object keys built from them."""

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import StringConstraints

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""Letters, digits, ``-`` and ``_``; 64 characters at most. Checked before an id touches a key."""

UserId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
FileId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class AudioExtension(StrEnum):
    """The container formats a recording may be uploaded in."""

    M4A = "m4a"
    MP3 = "mp3"
    WAV = "wav"
    OGG = "ogg"
    OPUS = "opus"
    WEBM = "webm"
    FLAC = "flac"
    AAC = "aac"


SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(e.value for e in AudioExtension)


def audio_object_key(user_id: str, file_id: str, extension: str) -> str:
    """Return the S3 key of an uploaded recording: ``audio/{user_id}/{file_id}.{ext}``."""
    return f"audio/{user_id}/{file_id}.{extension}"


def audio_prefix(user_id: str) -> str:
    """Return the S3 prefix under which a user's recordings live."""
    return f"audio/{user_id}/"


def transcript_object_key(user_id: str, task_id: UUID | str) -> str:
    """Return the S3 key of a task's transcript: ``transcripts/{user_id}/{task_id}.json``."""
    return f"transcripts/{user_id}/{task_id}.json"
