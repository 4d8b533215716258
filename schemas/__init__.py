"""The contracts of the MedVoice pipeline: events, topics, the transcript document. No I/O."""

from schemas.events import (
    SCHEMA_VERSION,
    AudioSubmitted,
    ErrorInfo,
    EventBase,
    TaskStatusChanged,
    TranscriptReady,
    TranscriptSummary,
)
from schemas.ids import (
    SUPPORTED_EXTENSIONS,
    AudioExtension,
    FileId,
    UserId,
    audio_object_key,
    transcript_object_key,
)
from schemas.status import TaskStatus
from schemas.topics import Topics
from schemas.transcript import ChunkingInfo, Segment, TranscriptDocument, VocabularyInfo, Word

__all__ = [
    "SCHEMA_VERSION",
    "SUPPORTED_EXTENSIONS",
    "AudioExtension",
    "AudioSubmitted",
    "ChunkingInfo",
    "ErrorInfo",
    "EventBase",
    "FileId",
    "Segment",
    "TaskStatus",
    "TaskStatusChanged",
    "Topics",
    "TranscriptDocument",
    "TranscriptReady",
    "TranscriptSummary",
    "UserId",
    "VocabularyInfo",
    "Word",
    "audio_object_key",
    "transcript_object_key",
]
