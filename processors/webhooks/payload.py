"""What a webhook delivers: the task's final status, without the transcript's text.

The body is ``{"type": "task.completed" | "task.failed", "timestamp": ..., "data": {...}}``
(Standard Webhooks' payload shape), ``data`` being what ``GET /tasks/{task_id}`` answers minus
``transcript.text``: the text is patient data, so only the summary (language, duration, word
count) and ``transcript_uri`` travel; the owner fetches the text with the API.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from producer_api.models import TaskSummaryPublic
from schemas.events import TaskStatusChanged
from schemas.status import TaskStatus


class WebhookPayload(BaseModel):
    """The JSON body POSTed to a receiver."""

    type: Literal["task.completed", "task.failed"]
    timestamp: datetime  # when the task reached this status
    data: TaskSummaryPublic  # the API's list row: GET /tasks/{task_id} minus the text


def payload(change: TaskStatusChanged) -> bytes:
    """The body delivered for a final status (UTF-8 JSON)."""
    kind: Literal["task.completed", "task.failed"] = (
        "task.completed" if change.status is TaskStatus.COMPLETED else "task.failed"
    )
    data = TaskSummaryPublic.of(change)
    return (
        WebhookPayload(type=kind, timestamp=change.occurred_at, data=data)
        .model_dump_json()
        .encode()
    )
