"""Decoding holds about one copy of the audio: samples go into one preallocated buffer,
bounded by max_audio_s, instead of a list of frames concatenated at the end. Besides it,
only the block of source frames on its way to the resampler (about ``BLOCK_S`` seconds)."""

import io
import tracemalloc
import wave

import numpy as np
import pytest

from processors.audio import BLOCK_S, SAMPLE_RATE, PcmBuffer, decode
from processors.errors import ErrorCode, TaskError
from schemas.ids import AudioExtension

WAV = AudioExtension("wav")


SOURCE_RATE = 44_100
# The block being joined: the source frames' samples and their concatenation (stereo s16).
BLOCK_BYTES = 2 * int(BLOCK_S * SOURCE_RATE) * 2 * 2


def tone_wav(seconds: float, rate: int = SOURCE_RATE) -> bytes:
    """A stereo 16-bit WAV of a tone (resampled and down-mixed by the decoder)."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(mono, 2).tobytes())
    return out.getvalue()


def peak_while(fn: object, *args: object, **kwargs: object) -> tuple[int, object]:
    """Peak bytes allocated (numpy buffers included) while ``fn`` runs, and its result."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            result: object = fn(*args, **kwargs)  # type: ignore[operator]
        except TaskError as exc:
            result = exc
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak, result


def test_decoding_peaks_at_about_one_copy_of_the_audio() -> None:
    data = tone_wav(60.0)
    peak, pcm = peak_while(decode, data, WAV, max_duration_s=3600)
    samples = pcm.samples  # type: ignore[attr-defined]
    assert abs(len(samples) - 60 * SAMPLE_RATE) < SAMPLE_RATE // 10
    # Frames collected and then concatenated peak at twice the audio; in place, ~once.
    assert peak < 1.3 * samples.nbytes, (peak, samples.nbytes)


def test_a_recording_over_the_limit_fails_before_the_buffer_passes_it() -> None:
    data = tone_wav(30.0)
    peak, err = peak_while(decode, data, WAV, max_duration_s=5)
    assert isinstance(err, TaskError) and err.code is ErrorCode.AUDIO_TOO_LONG
    limit_bytes = 5 * SAMPLE_RATE * 4
    # The 30 s recording decoded whole would peak at 1.9 MB.
    assert peak < 1.3 * limit_bytes + BLOCK_BYTES, (peak, limit_bytes)


def test_the_buffer_grows_when_the_estimate_is_short_but_never_past_the_limit() -> None:
    buf = PcmBuffer(expected=0, limit=3 * SAMPLE_RATE)
    one_s = np.ones(SAMPLE_RATE, np.float32)
    assert buf.append(one_s) and buf.append(one_s) and buf.append(one_s)
    assert buf.capacity == 3 * SAMPLE_RATE
    assert not buf.append(one_s[:1]), "one sample past the limit is refused"
    assert buf.size == 3 * SAMPLE_RATE and float(buf.samples().sum()) == 3 * SAMPLE_RATE


@pytest.mark.parametrize("expected", [0, SAMPLE_RATE // 2, 10 * SAMPLE_RATE])
def test_the_samples_are_kept_in_order_whatever_the_estimate(expected: int) -> None:
    buf = PcmBuffer(expected=expected, limit=None)
    parts = [np.full(7000, i, np.float32) for i in range(5)]
    for part in parts:
        assert buf.append(part)
    assert np.array_equal(buf.samples(), np.concatenate(parts))
