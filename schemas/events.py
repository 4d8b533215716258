"""Events on the pipeline's topics: pydantic v2 models serialised as UTF-8 JSON.

Adding an optional field is a compatible change; removing or renaming one needs a new
``schema_version``. Readers ignore fields they do not know.
"""

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.ids import AudioExtension, FileId, UserId
from schemas.status import TaskStatus

SCHEMA_VERSION = 1
MAX_INLINE_TEXT_CHARS = 200_000  # keeps TranscriptReady far below Kafka's 1 MB default
CALLBACK_URL_DESCRIPTION = (
    "the submission's webhook URL, checked by the API; the final status is POSTed to it. "
    "May carry a secret in its query: never logged, never in metric labels"
)


def _now() -> datetime:
    return datetime.now(UTC)


class EventBase(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(default_factory=uuid4)
    schema_version: int = SCHEMA_VERSION
    occurred_at: AwareDatetime = Field(default_factory=_now)
    task_id: UUID
    user_id: UserId

    def to_bytes(self) -> bytes:
        """Serialise as UTF-8 JSON."""
        return self.model_dump_json().encode()


class AudioSubmitted(EventBase):
    """A recording was submitted for transcription (topic ``audio.submitted``)."""

    event_type: Literal["AudioSubmitted"] = "AudioSubmitted"
    file_id: FileId
    file_extension: AudioExtension
    object_key: str
    file_name: str | None = Field(default=None, description="patient data: never logged")
    submitted_at: AwareDatetime = Field(default_factory=_now)
    callback_url: str | None = Field(default=None, description=CALLBACK_URL_DESCRIPTION)


class TranscriptSummary(BaseModel):
    """Headline figures of a transcript, carried in status events (no text: see S3)."""

    model_config = ConfigDict(frozen=True)

    language: str
    duration_s: float
    word_count: int
    transcript_uri: str


class TranscriptReady(EventBase):
    """A transcript is ready (topic ``transcript.ready``); the full document is in S3."""

    event_type: Literal["TranscriptReady"] = "TranscriptReady"
    file_id: FileId
    transcript_uri: str
    text: str = Field(max_length=MAX_INLINE_TEXT_CHARS)
    text_truncated: bool = False
    language: str
    duration_s: float
    word_count: int
    backend: str
    model: str
    submitted_at: AwareDatetime


class ErrorInfo(BaseModel):
    """Why a task failed: a stable code and a message safe to show the task's owner."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str


class TaskStatusChanged(EventBase):
    """A task changed status (compacted topic ``task.status``)."""

    event_type: Literal["TaskStatusChanged"] = "TaskStatusChanged"
    file_id: FileId
    status: TaskStatus
    submitted_at: AwareDatetime
    attempt: int = 0
    replay: int = Field(
        default=0, description="times replayed from the dead letters by an operator"
    )
    error: ErrorInfo | None = None
    transcript: TranscriptSummary | None = None
    callback_url: str | None = Field(default=None, description=CALLBACK_URL_DESCRIPTION)
