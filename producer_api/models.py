"""Response bodies of the HTTP API."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.events import ErrorInfo, TaskStatusChanged, TranscriptSummary
from schemas.ids import AudioExtension
from schemas.status import TaskStatus

SUBMITTED_MESSAGE = "Audio processing started in the background"
# No C0/C1 controls, zero-width or bidi-override characters, line or paragraph separators
# (they spoof names in UIs and split log lines); the same pattern in Python, Rust and JS.
FILE_NAME_PATTERN = (
    r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]+$"
)
AUTH_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "No bearer token, or one that is not valid"},
    403: {"description": "The token's subject may not act for this user"},
}


class ErrorPublic(BaseModel):
    """An error: a message, or a list of validation errors (type, loc, msg, short input)."""

    detail: str | list[dict[str, Any]]


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
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="headers the PUT must send as given (the signature covers them)",
    )
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


class TaskSummaryPublic(BaseModel):
    """A task in a list: as :class:`TaskPublic`, without the transcript's text."""

    task_id: UUID
    user_id: str
    file_id: str
    status: TaskStatus
    submitted_at: datetime
    updated_at: datetime
    attempt: int
    transcript: TranscriptSummary | None = None
    error: ErrorInfo | None = None

    @classmethod
    def of(cls, change: TaskStatusChanged) -> "TaskSummaryPublic":
        """The task as its latest status record shows it (the list's rows, webhooks' data)."""
        return cls(
            task_id=change.task_id,
            user_id=change.user_id,
            file_id=change.file_id,
            status=change.status,
            submitted_at=change.submitted_at,
            updated_at=change.occurred_at,
            attempt=change.attempt,
            transcript=change.transcript,
            error=change.error,
        )


class TaskListPublic(BaseModel):
    """A page of a user's tasks, newest submission first."""

    tasks: list[TaskSummaryPublic]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null: no more tasks"
    )


class ErasePublic(BaseModel):
    """An accepted erase."""

    task_id: UUID
    message: str = "The task's recording, transcript and status are erased."


class CatchingUp(BaseModel):
    """How far the status view is from having read task.status up to its start."""

    records_behind: int


class HealthPublic(BaseModel):
    """Liveness or readiness with each dependency's state."""

    status: str
    checks: dict[str, bool] = {}
    catching_up: CatchingUp | None = None
