"""Decoding a recording of a supported container to 16 kHz mono float32 PCM with PyAV."""

import io
from typing import NamedTuple

import av
import numpy as np
import numpy.typing as npt

from medvoice_common.audio_format import open_audio
from processors.errors import ErrorCode, TaskError
from schemas.ids import AudioExtension

SAMPLE_RATE = 16_000  # what both ASR backends are given
MIN_SAMPLES = SAMPLE_RATE // 10  # under 0.1 s there is nothing to transcribe


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
    chunks: list[npt.NDArray[np.float32]] = []
    total = 0
    try:
        with open_audio(io.BytesIO(data), extension) as container:
            stream = _audio_stream(container)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    total += _append(chunks, out)
                if max_samples is not None and total > max_samples:
                    _too_long(max_duration_s)
            for out in resampler.resample(None):
                total += _append(chunks, out)
    except TaskError:
        raise
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise TaskError(
            ErrorCode.AUDIO_UNDECODABLE, "The file could not be decoded as audio."
        ) from exc
    if total < MIN_SAMPLES:
        raise TaskError(ErrorCode.AUDIO_EMPTY, "The recording holds no audio.")
    return Pcm(np.concatenate(chunks))


def _append(chunks: list[npt.NDArray[np.float32]], frame: av.AudioFrame) -> int:
    samples = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    chunks.append(samples)
    return len(samples)


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream:
    if not container.streams.audio:
        raise TaskError(ErrorCode.AUDIO_UNDECODABLE, "The file holds no audio track.")
    return container.streams.audio[0]


def _too_long(max_duration_s: float | None) -> None:
    raise TaskError(
        ErrorCode.AUDIO_TOO_LONG,
        f"The recording is longer than the {max_duration_s or 0:.0f} s allowed.",
    )
