"""Cutting long audio into chunks a backend accepts, and stitching the results back."""

from concurrent.futures import ThreadPoolExecutor

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
    *,
    parallel: int = 1,
) -> tuple[Transcript, ChunkingInfo]:
    """Transcribe ``samples`` chunk by chunk; word and segment times are global.

    Args:
        backend: the recogniser.
        samples: 16 kHz mono audio.
        options: passed to every call.
        max_chunk_s: the longest chunk one call gets.
        parallel: chunks sent at once (a remote server batches them); results keep
            the chunks' order either way.

    Raises:
        TaskError: the first failing chunk's error, in chunk order; chunks not yet
            started are not sent.
    """
    bounds = chunk_bounds(samples, max_chunk_s)
    pieces = [samples[start:end] for start, end in bounds]
    segments: list[Segment] = []
    language = options.language
    for (start, _), part in zip(
        bounds, _recognise_all(backend, pieces, options, parallel), strict=True
    ):
        language = part.language or language
        segments.extend(_shift(seg, start / SAMPLE_RATE) for seg in part.segments)
    info = ChunkingInfo(
        max_chunk_s=max_chunk_s,
        chunks=[(round(s / SAMPLE_RATE, 3), round(e / SAMPLE_RATE, 3)) for s, e in bounds],
    )
    return Transcript(segments=segments, language=language), info


def _recognise_all(
    backend: AsrBackend,
    pieces: list[npt.NDArray[np.float32]],
    options: AsrOptions,
    parallel: int,
) -> list[Transcript]:
    if parallel <= 1 or len(pieces) <= 1:
        return [backend.transcribe(piece, options) for piece in pieces]
    pool = ThreadPoolExecutor(min(parallel, len(pieces)), thread_name_prefix="asr-chunk")
    try:
        futures = [pool.submit(backend.transcribe, piece, options) for piece in pieces]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
