"""A transcript document as plain text, SubRip (SRT) or WebVTT subtitles.

Cues follow common captioning limits: at most ``MAX_LINE_CHARS`` characters a line, at most
``MAX_LINES`` lines and ``MAX_CUE_S`` seconds a cue. A segment that breaks a limit is split at
word boundaries, using the words' own times when the backend gave them (both backends do by
default) and times proportional to the characters otherwise. Times are those of the whole
recording, so a long recording recognised in chunks exports in one time line.
"""

import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from schemas.transcript import Segment, TranscriptDocument, Word

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_S = 7.0
MIN_CUE_S = 0.2  # a cue shorter than this cannot be read; players may drop a zero-length one


class ExportFormat(StrEnum):
    """The formats ``GET /tasks/{id}/transcript?format=`` offers."""

    JSON = "json"
    TXT = "txt"
    SRT = "srt"
    VTT = "vtt"


MEDIA_TYPES = {
    ExportFormat.JSON: "application/json",
    ExportFormat.TXT: "text/plain; charset=utf-8",
    ExportFormat.SRT: "application/x-subrip; charset=utf-8",
    ExportFormat.VTT: "text/vtt; charset=utf-8",
}


@dataclass(frozen=True)
class Cue:
    """One subtitle: its time span and its (already wrapped) lines."""

    start_s: float
    end_s: float
    lines: tuple[str, ...]


def _fits(text: str) -> bool:
    return len(textwrap.wrap(text, MAX_LINE_CHARS, break_long_words=True)) <= MAX_LINES


def _word_groups(words: Sequence[Word]) -> Iterator[list[Word]]:
    """Consecutive words, as many per group as fit one cue's text and time limits."""
    group: list[Word] = []
    for word in words:
        candidate = [*group, word]
        text = " ".join(w.word.strip() for w in candidate)
        too_long = candidate[-1].end_s - candidate[0].start_s > MAX_CUE_S
        if group and (not _fits(text) or too_long):
            yield group
            candidate = [word]
        group = candidate
    if group:
        yield group


def _text_groups(segment: Segment) -> Iterator[tuple[float, float, str]]:
    """A segment without word times, cut at word boundaries with proportional times."""
    tokens = segment.text.split()
    pieces: list[str] = []
    current = ""
    for token in tokens:
        candidate = f"{current} {token}".strip()
        if current and not _fits(candidate):
            pieces.append(current)
            candidate = token
        current = candidate
    if current:
        pieces.append(current)
    total = sum(len(p) for p in pieces) or 1
    span = max(segment.end_s - segment.start_s, 0.0)
    start = segment.start_s
    for piece in pieces:
        end = start + span * len(piece) / total
        yield start, end, piece
        start = end


def cues(doc: TranscriptDocument) -> list[Cue]:
    """The document's cues in time order, within the line, length and duration limits."""
    spans: list[tuple[float, float, str]] = []
    for segment in doc.segments:
        if not segment.text.strip():
            continue
        if segment.words:
            for group in _word_groups(segment.words):
                text = " ".join(w.word.strip() for w in group)
                spans.append((group[0].start_s, group[-1].end_s, text))
        else:
            spans.extend(_text_groups(segment))
    result: list[Cue] = []
    for start, end, text in sorted(spans, key=lambda s: s[0]):
        if result and start < result[-1].end_s:  # cues never overlap; no text is dropped
            previous = result[-1]
            if start - previous.start_s >= MIN_CUE_S:
                result[-1] = Cue(previous.start_s, start, previous.lines)
            else:
                start = previous.end_s
        end = max(end, start + MIN_CUE_S)
        lines = tuple(textwrap.wrap(text, MAX_LINE_CHARS, break_long_words=True))
        result.append(Cue(start, end, lines))
    return result


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(doc: TranscriptDocument) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm`` times, a blank line after each cue."""
    blocks = []
    for number, cue in enumerate(cues(doc), start=1):
        span = f"{_timestamp(cue.start_s, ',')} --> {_timestamp(cue.end_s, ',')}"
        blocks.append(f"{number}\n{span}\n" + "\n".join(cue.lines) + "\n")
    return "\n".join(blocks)


def to_vtt(doc: TranscriptDocument) -> str:
    """WebVTT: the ``WEBVTT`` header, then cues with ``HH:MM:SS.mmm`` times."""
    blocks = ["WEBVTT\n"]
    for cue in cues(doc):
        # "-->" cannot occur in cue text (it ends the cue's timing line); so say it in words.
        lines = [line.replace("-->", "→") for line in cue.lines]
        span = f"{_timestamp(cue.start_s, '.')} --> {_timestamp(cue.end_s, '.')}"
        blocks.append(f"{span}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def to_text(doc: TranscriptDocument) -> str:
    """The transcript's text, one segment a line."""
    lines = [s.text.strip() for s in doc.segments if s.text.strip()]
    return "\n".join(lines) + "\n" if lines else doc.text.strip() + "\n"


def render(doc: TranscriptDocument, fmt: ExportFormat) -> str:
    """The document in ``fmt``."""
    if fmt is ExportFormat.SRT:
        return to_srt(doc)
    if fmt is ExportFormat.VTT:
        return to_vtt(doc)
    if fmt is ExportFormat.TXT:
        return to_text(doc)
    return doc.model_dump_json()
