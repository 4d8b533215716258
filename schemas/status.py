"""The lifecycle of a task."""

from enum import StrEnum


class TaskStatus(StrEnum):
    """Where a task is; ``completed`` and ``failed`` are final."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        """Whether no further change is expected."""
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED)

    @property
    def rank(self) -> int:
        """Order of the lifecycle; a view never moves a task to a lower rank."""
        return _RANK[self]


_RANK = {
    TaskStatus.QUEUED: 0,
    TaskStatus.PROCESSING: 1,
    TaskStatus.COMPLETED: 2,
    TaskStatus.FAILED: 2,
}
