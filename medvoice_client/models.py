"""The API's bodies as the client reads them.

Single-task bodies are the API's own response models (``producer_api.models``), so client and
server cannot drift apart; the task list (``GET /users/{user_id}/tasks``) carries tasks whose
transcript has no text.
"""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from producer_api.models import PresignPublic, SubmitPublic, TaskPublic, UploadPublic
from schemas.events import ErrorInfo, TranscriptSummary
from schemas.exports import ExportFormat
from schemas.ids import AudioExtension
from schemas.status import TaskStatus

Upload = UploadPublic
Presign = PresignPublic
Submitted = SubmitPublic
Task = TaskPublic

__all__ = [
    "AudioExtension",
    "ExportFormat",
    "ListedTask",
    "Presign",
    "Submitted",
    "Task",
    "TaskPage",
    "TaskStatus",
    "Upload",
]


class ListedTask(BaseModel):
    """A task as the list endpoint shows it (its transcript's figures, not its text)."""

    task_id: UUID
    user_id: str
    file_id: str
    status: TaskStatus
    submitted_at: datetime
    updated_at: datetime
    attempt: int
    transcript: TranscriptSummary | None = None
    error: ErrorInfo | None = None


class TaskPage(BaseModel):
    """One page of a user's tasks, newest first; ``next_cursor`` fetches the next."""

    tasks: list[ListedTask]
    next_cursor: str | None = None
