"""The events a completed task emits, built from its transcript document."""

from schemas.events import MAX_INLINE_TEXT_CHARS, AudioSubmitted, TranscriptReady, TranscriptSummary
from schemas.transcript import TranscriptDocument


def ready_event(sub: AudioSubmitted, doc: TranscriptDocument, uri: str) -> TranscriptReady:
    """TranscriptReady for ``sub``: the text inline (bounded), the document at ``uri``."""
    text = doc.text[:MAX_INLINE_TEXT_CHARS]
    return TranscriptReady(
        task_id=sub.task_id,
        user_id=sub.user_id,
        file_id=sub.file_id,
        transcript_uri=uri,
        text=text,
        text_truncated=len(text) < len(doc.text),
        language=doc.language,
        duration_s=doc.duration_s,
        word_count=len(doc.words),
        backend=doc.backend,
        model=doc.model,
        submitted_at=sub.submitted_at,
    )


def summary_of(doc: TranscriptDocument, uri: str) -> TranscriptSummary:
    """The headline figures of ``doc`` for the completed status (no text)."""
    return TranscriptSummary(
        language=doc.language,
        duration_s=doc.duration_s,
        word_count=len(doc.words),
        transcript_uri=uri,
    )
