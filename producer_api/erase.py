"""Erasing a task: its recording and transcript from S3, then a tombstone on task.status.

Only a task whose status is final (``completed`` or ``failed``) is erased: a task still
queued or processing would be written again by the worker (its transcript, its final
status), so erasing it is refused (409) until it has finished. The S3 objects go first: if
publishing the tombstone then fails, the caller retries the erase (deleting a missing object
succeeds). Events already published on ``transcript.ready`` are not recalled.
"""

import asyncio
import uuid

from producer_api.publisher import Publisher
from producer_api.status_view import StatusView
from producer_api.storage import Storage
from schemas.events import TaskStatusChanged
from schemas.ids import SUPPORTED_EXTENSIONS, audio_object_key, transcript_object_key


def object_keys(change: TaskStatusChanged) -> list[str]:
    """The task's objects: its transcript, and its recording under any extension.

    The status record names the recording's file id, not its extension: every supported
    extension is deleted (one request; a missing key is no error).
    """
    audio = [
        audio_object_key(change.user_id, change.file_id, ext)
        for ext in sorted(SUPPORTED_EXTENSIONS)
    ]
    return [transcript_object_key(change.user_id, change.task_id), *audio]


def _delete(storage: Storage, keys: list[str]) -> None:
    answer = storage.client.delete_objects(
        Bucket=storage.bucket,
        Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
    )
    if answer.get("Errors"):
        codes = sorted({e.get("Code", "?") for e in answer["Errors"]})
        raise OSError(f"S3 refused to delete {len(answer['Errors'])} objects: {codes}")


async def erase(
    change: TaskStatusChanged, storage: Storage, publisher: Publisher, view: StatusView
) -> None:
    """Delete the task's objects, publish its tombstone, and drop it from this view."""
    await asyncio.to_thread(_delete, storage, object_keys(change))
    await publisher.tombstone(str(change.task_id))
    view.remove(uuid.UUID(str(change.task_id)))
