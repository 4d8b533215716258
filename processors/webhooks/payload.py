"""What a webhook delivers: the task's final status, without the transcript's text.

The body is ``{"type": "task.completed" | "task.failed", "timestamp": ..., "data": {...}}``
(Standard Webhooks' payload shape), ``data`` being what ``GET /tasks/{task_id}`` answers minus
``transcript.text``: the text is patient data, so only the summary (language, duration, word
count) and ``transcript_uri`` travel; the owner fetches the text with the API.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from schemas.events import ErrorInfo, TaskStatusChanged, TranscriptSummary
from schemas.status import TaskStatus


class TaskData(BaseModel):
    """The task as ``GET /tasks/{task_id}`` shows it, without the transcript's text."""

    task_id: UUID
    user_id: str
    file_id: str
    status: TaskStatus
    submitted_at: datetime
    updated_at: datetime
    attempt: int
    transcript: TranscriptSummary | None = None
    error: ErrorInfo | None = None


class WebhookPayload(BaseModel):
    """The JSON body POSTed to a receiver."""

    type: Literal["task.completed", "task.failed"]
    timestamp: datetime  # when the task reached this status
    data: TaskData


def payload(change: TaskStatusChanged) -> bytes:
    """The body delivered for a final status (UTF-8 JSON)."""
    kind: Literal["task.completed", "task.failed"] = (
        "task.completed" if change.status is TaskStatus.COMPLETED else "task.failed"
    )
    data = TaskData(
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
    return (
        WebhookPayload(type=kind, timestamp=change.occurred_at, data=data)
        .model_dump_json()
        .encode()
    )
