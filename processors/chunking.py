"""Cutting long audio into chunks a backend accepts, and stitching the results back."""

import numpy as np
import numpy.typing as npt

from processors.asr.base import AsrBackend, AsrOptions, Transcript
from processors.audio import SAMPLE_RATE
from schemas.transcript import ChunkingInfo, Segment, Word

FRAME_S = 0.02  # energy is measured over 20 ms frames: shorter than any phoneme
SEARCH_FRACTION = 0.25  # look for a quiet point in the last quarter before the limit


def chunk_bounds(samples: npt.NDArray[np.float32], max_chunk_s: float) -> list[tuple[int, int]]:
    """Return ``(start, end)`` sample indices of chunks no longer than ``max_chunk_s``.

    Each cut is placed at the quietest 20 ms frame in the last quarter before the limit,
    so words are rarely split.
    """
    limit = int(max_chunk_s * SAMPLE_RATE)
    frame = int(FRAME_S * SAMPLE_RATE)
    bounds: list[tuple[int, int]] = []
    start = 0
    n = len(samples)
    while n - start > limit:
        lo = start + int(limit * (1 - SEARCH_FRACTION))
        window = samples[lo : start + limit]
        usable = (len(window) // frame) * frame
        energy = np.square(window[:usable].reshape(-1, frame)).mean(axis=1)
        cut = lo + int(np.argmin(energy)) * frame + frame // 2
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds


def transcribe_chunked(
    backend: AsrBackend,
    samples: npt.NDArray[np.float32],
    options: AsrOptions,
    max_chunk_s: float,
) -> tuple[Transcript, ChunkingInfo]:
    """Transcribe ``samples`` chunk by chunk; word and segment times are global."""
    bounds = chunk_bounds(samples, max_chunk_s)
    segments: list[Segment] = []
    language = options.language
    for start, end in bounds:
        part = backend.transcribe(samples[start:end], options)
        language = part.language or language
        segments.extend(_shift(seg, start / SAMPLE_RATE) for seg in part.segments)
    info = ChunkingInfo(
        max_chunk_s=max_chunk_s,
        chunks=[(round(s / SAMPLE_RATE, 3), round(e / SAMPLE_RATE, 3)) for s, e in bounds],
    )
    return Transcript(segments=segments, language=language), info


def _shift(seg: Segment, offset_s: float) -> Segment:
    if offset_s == 0:
        return seg
    return seg.model_copy(
        update={
            "start_s": round(seg.start_s + offset_s, 3),
            "end_s": round(seg.end_s + offset_s, 3),
            "words": [
                Word(
                    word=w.word,
                    start_s=round(w.start_s + offset_s, 3),
                    end_s=round(w.end_s + offset_s, 3),
                    confidence=w.confidence,
                    speaker=w.speaker,
                )
                for w in seg.words
            ],
        }
    )
