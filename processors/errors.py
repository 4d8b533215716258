"""Why a task did not complete: stable error codes, transient or permanent."""

from enum import StrEnum


class ErrorCode(StrEnum):
    """Codes that appear in ``failed`` statuses and dead-letter headers."""

    AUDIO_MISSING = "audio_missing"
    AUDIO_UNDECODABLE = "audio_undecodable"
    AUDIO_WRONG_FORMAT = "audio_wrong_format"
    """The file's bytes are not the container its extension declares."""
    AUDIO_EMPTY = "audio_empty"
    AUDIO_TOO_LONG = "audio_too_long"
    AUDIO_TOO_LARGE = "audio_too_large"
    ASR_REJECTED = "asr_rejected"
    ASR_UNAVAILABLE = "asr_unavailable"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    RETRIES_EXHAUSTED = "retries_exhausted"
    INTERNAL = "internal_error"
    INVALID_EVENT = "invalid_event"
    WORKER_CRASHED = "worker_crashed"
    """Deliveries of the task kept ending without an outcome (the worker died in it)."""
    OBJECT_KEY_MISMATCH = "object_key_mismatch"
    """The event's object_key is not the key its user_id, file_id and extension name."""


class TaskError(Exception):
    """A task cannot go on. ``message`` is shown to the task's owner: no internals in it."""

    def __init__(self, code: ErrorCode, message: str, *, transient: bool = False) -> None:
        """Create the error.

        Args:
            code: the stable error code.
            message: a human-readable reason, safe to show the task's owner.
            transient: whether trying again later may succeed.
        """
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
