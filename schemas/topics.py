"""Kafka topic names, configurable with a common prefix."""

from typing import NamedTuple


class Topics(NamedTuple):
    """The pipeline's topics."""

    submitted: str
    """Work queue of AudioSubmitted, keyed by task_id."""
    ready: str
    """TranscriptReady for downstream services, keyed by task_id."""
    status: str
    """TaskStatusChanged, compacted, keyed by task_id."""
    retry: str
    """AudioSubmitted waiting for a retry after a transient failure."""
    dlq: str
    """Dead letters: original bytes of poison records and exhausted tasks, error in headers."""

    @classmethod
    def with_prefix(cls, prefix: str = "") -> "Topics":
        """Return the default topic names, each preceded by ``prefix``."""
        return cls(
            submitted=f"{prefix}audio.submitted",
            ready=f"{prefix}transcript.ready",
            status=f"{prefix}task.status",
            retry=f"{prefix}audio.submitted.retry",
            dlq=f"{prefix}audio.submitted.dlq",
        )
