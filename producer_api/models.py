"""Response bodies of the HTTP API."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from schemas.events import ErrorInfo, TranscriptSummary
from schemas.ids import AudioExtension
from schemas.status import TaskStatus

SUBMITTED_MESSAGE = "Audio processing started in the background"


class SubmitPublic(BaseModel):
    """The seed contract's answer."""

    message: str = SUBMITTED_MESSAGE
    task_id: UUID


class UploadPublic(BaseModel):
    """A stored recording."""

    file_id: str
    file_extension: AudioExtension
    object_key: str


class PresignPublic(UploadPublic):
    """Where to PUT a recording directly."""

    url: str
    method: str = "PUT"
    expires_in_s: int


class TranscriptPublic(TranscriptSummary):
    """A completed task's transcript: its text and headline figures."""

    text: str


class TaskPublic(BaseModel):
    """A task as its owner sees it."""

    task_id: UUID
    user_id: str
    file_id: str
    status: TaskStatus
    submitted_at: datetime
    updated_at: datetime
    attempt: int
    transcript: TranscriptPublic | None = None
    error: ErrorInfo | None = None


class HealthPublic(BaseModel):
    """Liveness or readiness with each dependency's state."""

    status: str
    checks: dict[str, bool] = {}
