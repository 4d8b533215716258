"""A typed client of the MedVoice API (sync and async, on httpx) and the ``medvoice`` CLI.

Example::

    with Client("http://127.0.0.1:8000", token) as mv:
        up = mv.upload("visit.m4a")
        task_id = mv.submit(up.file_id, up.file_extension, file_name="visit.m4a")
        done = mv.wait(task_id)  # a Task: completed or failed
        srt = mv.transcript(task_id, "srt")
"""

from medvoice_client.aio import AsyncClient
from medvoice_client.client import Client
from medvoice_client.errors import ApiError, MedVoiceError, Unreachable, WaitTimeout
from medvoice_client.models import (
    ExportFormat,
    ListedTask,
    Presign,
    Task,
    TaskPage,
    TaskStatus,
    Upload,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ExportFormat",
    "ListedTask",
    "MedVoiceError",
    "Presign",
    "Task",
    "TaskPage",
    "TaskStatus",
    "Unreachable",
    "Upload",
    "WaitTimeout",
]
