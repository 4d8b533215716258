"""The API's bodies as the client reads them.

Every body is the API's own response model (``producer_api.models``), so client and server
cannot drift apart; the task list (``GET /users/{user_id}/tasks``) carries tasks whose
transcript has no text.
"""

from producer_api.models import (
    PresignPublic,
    SubmitPublic,
    TaskListPublic,
    TaskPublic,
    TaskSummaryPublic,
    UploadPublic,
)
from schemas.exports import ExportFormat
from schemas.ids import AudioExtension
from schemas.status import TaskStatus

Upload = UploadPublic
Presign = PresignPublic
Submitted = SubmitPublic
Task = TaskPublic
ListedTask = TaskSummaryPublic
TaskPage = TaskListPublic

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
