"""The full transcript document, stored in S3 at ``transcripts/{user_id}/{task_id}.json``."""

from datetime import UTC, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

CONFIDENCE_MEANING = {
    "whisper": "probability of the word under the model (0-1), from faster-whisper",
    "riva": "Riva's word confidence score; a relative score, not a calibrated probability",
}
"""What ``Word.confidence`` means for each backend."""


class Word(BaseModel):
    """One recognised word with its time in the whole recording."""

    model_config = ConfigDict(frozen=True)

    word: str
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    confidence: float
    speaker: int | None = None


class Segment(BaseModel):
    """A stretch of speech (a sentence or phrase) and its words."""

    model_config = ConfigDict(frozen=True)

    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    text: str
    words: list[Word] = Field(default_factory=list)
    speaker: int | None = None


class ChunkingInfo(BaseModel):
    """How the recording was cut before recognition."""

    model_config = ConfigDict(frozen=True)

    max_chunk_s: float
    chunks: list[tuple[float, float]] = Field(
        default_factory=list, description="(start_s, end_s) of every chunk sent to the backend"
    )


class VocabularyInfo(BaseModel):
    """Which medical vocabulary was offered to the backend."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="file name of the vocabulary (not its path)")
    terms_offered: int
    boost: float | None = None


class TranscriptDocument(BaseModel):
    """The complete result of one task."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    task_id: UUID
    user_id: str
    text: str
    language: str
    duration_s: float
    backend: str
    model: str
    segments: list[Segment]
    chunking: ChunkingInfo
    vocabulary: VocabularyInfo | None = None
    confidence_meaning: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def words(self) -> list[Word]:
        """All words of all segments, in order."""
        return [w for s in self.segments for w in s.words]
