"""SRT, WebVTT and text exports, read back with real parsers (``srt``, ``webvtt-py``)."""

import itertools
import random
import uuid
from datetime import timedelta

import pytest
import srt
import webvtt

from schemas.exports import (
    MAX_CUE_S,
    MAX_LINE_CHARS,
    MAX_LINES,
    ExportFormat,
    render,
    to_srt,
    to_text,
    to_vtt,
)
from schemas.transcript import ChunkingInfo, Segment, TranscriptDocument, Word

VOCABULARY = (
    "patient reports chest pain since yesterday denies shortness of breath "
    "metoprolol twenty five milligrams twice daily echocardiogram shows preserved "
    "ejection fraction follow up in two weeks electrocardiogram normal sinus rhythm"
).split()


def _document(segments: list[Segment], duration_s: float) -> TranscriptDocument:
    return TranscriptDocument(
        task_id=uuid.uuid4(),
        user_id="dr_a",
        text=" ".join(s.text for s in segments),
        language="en",
        duration_s=duration_s,
        backend="whisper",
        model="tiny.en",
        segments=segments,
        chunking=ChunkingInfo(max_chunk_s=60.0, chunks=[(0.0, 60.0)]),
    )


def _long_chunked_recording(seed: int, hours: float = 1.6) -> TranscriptDocument:
    """Segments of 2-25 s with words, as a chunked recognition of a long dictation gives."""
    rng = random.Random(seed)
    segments = []
    t = 0.0
    while t < hours * 3600:
        n = rng.randint(3, 60)
        words = []
        for _ in range(n):
            start = t + rng.uniform(0.0, 0.1)
            end = start + rng.uniform(0.15, 0.6)
            words.append(
                Word(word=f" {rng.choice(VOCABULARY)}", start_s=start, end_s=end, confidence=0.9)
            )
            t = end
        text = "".join(w.word for w in words).strip()
        segments.append(Segment(start_s=words[0].start_s, end_s=t, text=text, words=words))
        t += rng.uniform(0.0, 2.0)
    return _document(segments, t)


def _seconds(stamp: str) -> float:
    """``HH:MM:SS.mmm`` as webvtt-py gives it (its ``*_in_seconds`` drop the milliseconds)."""
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _words_of(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_srt_of_a_long_chunked_recording_parses_and_keeps_every_word(seed: int) -> None:
    doc = _long_chunked_recording(seed)
    subtitles = list(srt.parse(to_srt(doc), ignore_errors=False))
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    assert _words_of(" ".join(s.content.replace("\n", " ") for s in subtitles)) == _words_of(
        doc.text
    )
    for before, after in itertools.pairwise(subtitles):
        assert before.end <= after.start  # in order, never overlapping
    for sub in subtitles:
        assert sub.start < sub.end
        assert sub.end - sub.start <= timedelta(seconds=MAX_CUE_S + 0.001)
        lines = sub.content.split("\n")
        assert len(lines) <= MAX_LINES
        assert all(len(line) <= MAX_LINE_CHARS for line in lines)
    # Times are those of the whole recording: the last cue is past the first hour.
    assert subtitles[-1].start > timedelta(hours=1)
    last_word = doc.segments[-1].words[-1]
    assert abs(subtitles[-1].end.total_seconds() - last_word.end_s) < 0.002


@pytest.mark.parametrize("seed", [4, 5])
def test_vtt_of_a_long_chunked_recording_parses_and_keeps_every_word(seed: int) -> None:
    doc = _long_chunked_recording(seed)
    captions = webvtt.from_string(to_vtt(doc), strict=True)
    # webvtt-py's WebVTT is iterable through __getitem__ only, which mypy does not count
    assert _words_of(" ".join(c.text.replace("\n", " ") for c in captions)) == _words_of(doc.text)  # type: ignore[attr-defined]
    previous_end = 0.0
    for caption in captions:  # type: ignore[attr-defined]
        start, end = _seconds(caption.start), _seconds(caption.end)
        assert start >= previous_end
        assert end > start
        assert end - start <= MAX_CUE_S + 0.001
        assert all(len(line) <= MAX_LINE_CHARS for line in caption.lines)
        assert len(caption.lines) <= MAX_LINES
        previous_end = end
    assert _seconds(captions[-1].start) > 3600


def test_a_segment_without_word_times_is_split_proportionally() -> None:
    """Riva with word offsets off gives segments without words: cut at word boundaries."""
    text = " ".join(VOCABULARY * 3)
    doc = _document([Segment(start_s=10.0, end_s=70.0, text=text)], 70.0)
    subtitles = list(srt.parse(to_srt(doc), ignore_errors=False))
    assert len(subtitles) > 1
    assert _words_of(" ".join(s.content.replace("\n", " ") for s in subtitles)) == _words_of(text)
    assert subtitles[0].start == timedelta(seconds=10)
    assert subtitles[-1].end == timedelta(seconds=70)
    assert all(len(line) <= MAX_LINE_CHARS for s in subtitles for line in s.content.split("\n"))


def test_cue_text_cannot_end_a_vtt_cue_early() -> None:
    words = [
        Word(word=w, start_s=i, end_s=i + 0.5, confidence=1)
        for i, w in enumerate(["a", "-->", "b"])
    ]
    doc = _document([Segment(start_s=0, end_s=3, text="a --> b", words=words)], 3.0)
    captions = webvtt.from_string(to_vtt(doc), strict=True)
    assert len(captions) == 1
    assert captions[0].text.split() == ["a", "→", "b"]


def test_zero_length_words_still_give_readable_ordered_cues() -> None:
    words = [Word(word=w, start_s=5.0, end_s=5.0, confidence=1) for w in ("one", "two")]
    later = [Word(word="three", start_s=5.0, end_s=5.0, confidence=1)]
    doc = _document(
        [
            Segment(start_s=5.0, end_s=5.0, text="one two", words=words),
            Segment(start_s=5.0, end_s=5.0, text="three", words=later),
        ],
        6.0,
    )
    subtitles = list(srt.parse(to_srt(doc), ignore_errors=False))
    assert [s.content for s in subtitles] == ["one two", "three"]
    assert subtitles[0].end <= subtitles[1].start
    assert all(s.end > s.start for s in subtitles)


def test_text_is_one_segment_a_line_and_json_is_the_document() -> None:
    doc = _long_chunked_recording(6, hours=0.01)
    assert to_text(doc).splitlines() == [s.text for s in doc.segments]
    assert TranscriptDocument.model_validate_json(render(doc, ExportFormat.JSON)) == doc


def test_an_empty_transcript_exports_empty_but_valid_files() -> None:
    doc = _document([], 3.0)
    assert list(srt.parse(to_srt(doc), ignore_errors=False)) == []
    assert len(webvtt.from_string(to_vtt(doc), strict=True)) == 0
    assert to_text(doc) == "\n"
