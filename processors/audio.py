"""Decoding a recording of a supported container to 16 kHz mono float32 PCM with PyAV.

The samples are exactly those faster-whisper's own ``faster_whisper.audio.decode_audio``
gives for the same bytes: FFmpeg resamples to 16 kHz mono **signed 16-bit** (its resampler
rounds there), the resampler is flushed at the end, and each sample becomes
``float32(s16) / 32768``. Converting to float directly (``flt``) differs by up to one s16
step (1.5e-5), and whisper's beam search is sensitive enough that such differences drop
words; so the pipeline hears what the engine hears. The difference from that function is
how: one stream read with only the declared demuxer, into one preallocated buffer, and
the resampler fed about a second of decoded frames at a time (:func:`merged_blocks`) rather
than each codec frame (1,024 samples for AAC): its cost is mostly per call.
"""

import io
import itertools
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import av
import numpy as np
import numpy.typing as npt

from medvoice_common.audio_format import open_audio
from processors.errors import ErrorCode, TaskError
from schemas.ids import AudioExtension

SAMPLE_RATE = 16_000  # what both ASR backends are given
MIN_SAMPLES = SAMPLE_RATE // 10  # under 0.1 s there is nothing to transcribe
RESAMPLE_FORMAT = "s16"  # what faster-whisper's decode_audio resamples to ...
S16_FULL_SCALE = 32768.0  # ... and divides by (exact: a power of two)
BLOCK_S = 1.0  # decoded audio per resampler call (measured: 0.25 s to 30 s within 20 %)
BLOCK_BYTES = 1 << 20  # ... and at most this much of it: many channels at a high rate


class Pcm(NamedTuple):
    """Decoded audio."""

    samples: npt.NDArray[np.float32]
    """Mono samples in [-1, 1] at ``SAMPLE_RATE``."""

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return len(self.samples) / SAMPLE_RATE


def decode(data: bytes, extension: AudioExtension, *, max_duration_s: float | None = None) -> Pcm:
    """Decode ``data``, a recording in the container ``extension`` names, to 16 kHz mono.

    Only that container's demuxer reads it (:func:`medvoice_common.audio_format.open_audio`):
    FFmpeg does not guess, so a playlist, concat script or image is not decoded.

    Args:
        data: the file's bytes.
        extension: its declared container.
        max_duration_s: stop and fail once more audio than this has been decoded.

    Returns:
        The decoded samples.

    Raises:
        TaskError: ``audio_undecodable``, ``audio_empty`` or ``audio_too_long``.
    """
    max_samples = int(max_duration_s * SAMPLE_RATE) if max_duration_s else None
    try:
        with open_audio(io.BytesIO(data), extension) as container:
            stream = _audio_stream(container)
            pcm = PcmBuffer(_expected_samples(container), max_samples)
            resampler = av.AudioResampler(format=RESAMPLE_FORMAT, layout="mono", rate=SAMPLE_RATE)
            blocks = merged_blocks(container.decode(stream))
            for block in itertools.chain(blocks, [None]):  # None: flush
                for out in resampler.resample(block):
                    if not pcm.append(out.to_ndarray().reshape(-1), divisor=S16_FULL_SCALE):
                        _too_long(max_duration_s)
    except TaskError:
        raise
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise TaskError(
            ErrorCode.AUDIO_UNDECODABLE, "The file could not be decoded as audio."
        ) from exc
    if pcm.size < MIN_SAMPLES:
        raise TaskError(ErrorCode.AUDIO_EMPTY, "The recording holds no audio.")
    return Pcm(pcm.samples())


def merged_blocks(
    frames: Iterable[av.AudioFrame], block_s: float = BLOCK_S, block_bytes: int = BLOCK_BYTES
) -> Iterator[av.AudioFrame]:
    """The decoded ``frames`` joined into frames of about ``block_s`` seconds each, or
    ``block_bytes`` of samples where that comes first (a block is joined by copying).

    Resampling a stream is the same whatever the sizes of the frames it arrives in (the
    resampler keeps its filter state across calls), so the samples out are those of
    frame-by-frame resampling; the tests compare them with the engine's decoder bit for bit.
    Frames join only while their sample format, channel layout and rate stay the same: a
    change ends the block, and the resampler sees it as it would have. A frame PyAV cannot
    copy faithfully (:func:`_joinable`) goes on alone.
    """
    pending: list[av.AudioFrame] = []
    size = nbytes = 0
    for frame in frames:
        if not _joinable(frame):
            if pending:
                yield _join(pending)
                pending, size, nbytes = [], 0, 0
            yield frame
            continue
        if pending and not _same_kind(pending[0], frame):
            yield _join(pending)
            pending, size, nbytes = [], 0, 0
        pending.append(frame)
        size += frame.samples
        nbytes += frame.samples * len(frame.layout.channels) * frame.format.bytes
        if size >= block_s * frame.sample_rate or nbytes >= block_bytes:
            yield _join(pending)
            pending, size, nbytes = [], 0, 0
    if pending:
        yield _join(pending)


def _joinable(frame: av.AudioFrame) -> bool:
    """Whether PyAV can copy this frame's samples out and back. For 8 or more planar
    channels (7.1 Opus, Vorbis or AAC) PyAV 18 counts more planes than there are (9 for
    7.1, 21 for 16 channels), and reading them (``to_ndarray``) crashes the process. Such
    frames go to the resampler as they are, as every frame once did."""
    planes = len(frame.layout.channels) if frame.format.is_planar else 1
    return len(frame.planes) == planes


def _same_kind(a: av.AudioFrame, b: av.AudioFrame) -> bool:
    return (a.format.name, a.layout.name, a.sample_rate) == (
        b.format.name,
        b.layout.name,
        b.sample_rate,
    )


def _join(frames: list[av.AudioFrame]) -> av.AudioFrame:
    """One frame holding ``frames``' samples in order (all of one kind; planar or packed)."""
    first = frames[0]
    samples = np.concatenate([f.to_ndarray() for f in frames], axis=1)
    joined = av.AudioFrame.from_ndarray(samples, format=first.format.name, layout=first.layout)
    joined.sample_rate = first.sample_rate
    return joined


class PcmBuffer:
    """Decoded samples written in place into one preallocated array, never concatenated.

    Sized from the container's duration estimate (capped by the limit); an estimate that is
    short makes it grow by doubling, never past the limit. The peak is about one copy of
    the audio, where collecting frames and concatenating them held two.
    """

    def __init__(self, expected: int, limit: int | None) -> None:
        """Preallocate for ``expected`` samples; refuse more than ``limit`` (None: no limit)."""
        capacity = max(expected, SAMPLE_RATE)
        if limit is not None:
            capacity = min(capacity, limit)
        self.limit = limit
        self.size = 0
        self._data = np.empty(max(capacity, 1), dtype=np.float32)

    @property
    def capacity(self) -> int:
        """Samples the buffer holds without growing."""
        return len(self._data)

    def append(self, samples: npt.NDArray[Any], *, divisor: float = 1.0) -> bool:
        """Copy ``samples`` in as float32, each divided by ``divisor`` (in place: no
        temporary array); False (nothing copied) when they would pass the limit.

        ``float32(x) / divisor`` is what ``x.astype(np.float32) / divisor`` gives.
        """
        end = self.size + len(samples)
        if self.limit is not None and end > self.limit:
            return False
        if end > len(self._data):
            grown = max(end, 2 * len(self._data))
            bigger = np.empty(grown if self.limit is None else min(grown, self.limit), np.float32)
            bigger[: self.size] = self._data[: self.size]
            self._data = bigger
        written = self._data[self.size : end]
        written[:] = samples
        if divisor != 1.0:
            written /= np.float32(divisor)
        self.size = end
        return True

    def samples(self) -> npt.NDArray[np.float32]:
        """The decoded samples (a view: no copy)."""
        return self._data[: self.size]


def _expected_samples(container: av.container.InputContainer) -> int:
    """Samples the recording should decode to, from its container's duration (0: unknown)."""
    duration = container.duration  # in av.time_base units (microseconds), or None
    if not duration or duration <= 0:
        return 0
    # A little over the estimate: encoder padding and rounding would otherwise force a copy.
    return int(duration / av.time_base * SAMPLE_RATE * 1.01) + SAMPLE_RATE // 10


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream:
    if not container.streams.audio:
        raise TaskError(ErrorCode.AUDIO_UNDECODABLE, "The file holds no audio track.")
    return container.streams.audio[0]


def _too_long(max_duration_s: float | None) -> None:
    raise TaskError(
        ErrorCode.AUDIO_TOO_LONG,
        f"The recording is longer than the {max_duration_s or 0:.0f} s allowed.",
    )
