"""The worker's decode gives exactly the samples faster-whisper's own decoder gives.

faster-whisper's ``decode_audio`` resamples to 16 kHz mono s16 and divides by 32768; a
float resample differs by up to one s16 step (1.5e-5) and tiny.en's beam search then drops
words. Real codecs (espeak-ng speech encoded with PyAV), real faster-whisper decoder.
"""

import io
import wave
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper.audio import decode_audio

from processors.audio import decode
from schemas.ids import AudioExtension
from tests.fixtures.audio import encode, speak_wav

SHORT = "Please schedule a chest x ray for tomorrow morning."
# About 35 s: past the 500,000 source samples faster-whisper resamples at a time, so its
# decoder works in several groups while the worker streams frame by frame.
LONG = (
    "The patient is a sixty two year old man with a history of hypertension who presents "
    "with shortness of breath on exertion for two weeks. He denies chest pain, palpitations "
    "or syncope. On examination his blood pressure was one hundred and fifty over ninety and "
    "his heart sounds were normal. There were fine crackles at both lung bases and mild "
    "pitting oedema of the ankles. An echocardiogram showed an ejection fraction of forty "
    "percent. We will start a low dose of a beta blocker and review him in clinic in four "
    "weeks."
)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("decode-engine")
    speak_wav(SHORT, directory / "short.wav")
    speak_wav(LONG, directory / "long.wav")
    return directory


def first_difference(ours: npt.NDArray[np.float32], engine: npt.NDArray[np.float32]) -> str:
    """Where two decodes part (for the failure message)."""
    if len(ours) != len(engine):
        return f"lengths differ: {len(ours)} vs the engine's {len(engine)}"
    at = int(np.flatnonzero(ours != engine)[0])
    return f"sample {at}: {ours[at]!r} vs the engine's {engine[at]!r}"


def assert_same_as_engine(data: bytes, ext: AudioExtension) -> None:
    ours = decode(data, ext).samples
    engine = decode_audio(io.BytesIO(data))
    assert ours.dtype == engine.dtype == np.float32
    assert np.array_equal(ours, engine), first_difference(ours, engine)


def clip(work: Path, name: str, ext: AudioExtension) -> bytes:
    wav = work / f"{name}.wav"
    return wav.read_bytes() if ext is AudioExtension.WAV else encode(wav, ext.value)


@pytest.mark.parametrize("ext", list(AudioExtension))
def test_a_short_clip_decodes_to_the_engines_samples(work: Path, ext: AudioExtension) -> None:
    assert_same_as_engine(clip(work, "short", ext), ext)


@pytest.mark.parametrize("ext", list(AudioExtension))
def test_a_long_clip_decodes_to_the_engines_samples(work: Path, ext: AudioExtension) -> None:
    data = clip(work, "long", ext)
    assert_same_as_engine(data, ext)
    assert len(decode(data, ext).samples) > 30 * 16_000  # more than one whisper window


@pytest.mark.parametrize(("rate", "channels"), [(44_100, 2), (48_000, 2), (8_000, 1)])
def test_other_rates_and_stereo_decode_to_the_engines_samples(rate: int, channels: int) -> None:
    """Down-mixing and up/down-sampling go through the same s16 step."""
    t = np.arange(int(20.0 * rate)) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 8000 + np.sin(2 * np.pi * 97 * t) * 3000).astype(np.int16)
    body = io.BytesIO()
    with wave.open(body, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(tone, channels).tobytes())
    assert_same_as_engine(body.getvalue(), AudioExtension.WAV)


def multichannel_opus(layout: str, channels: int, rate: int = 48_000) -> bytes:
    """Three seconds of a tone, each channel at its own level, as Opus in Ogg."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="ogg") as dst:
        stream = dst.add_stream("libopus", rate=rate, layout=layout)
        t = np.arange(3 * rate) / rate
        tone = np.sin(2 * np.pi * 440 * t) * 8000
        levels = np.arange(1, channels + 1) / channels
        samples = (tone[:, np.newaxis] * levels).astype(np.int16)  # (samples, channels)
        for start in range(0, len(samples), 960):
            block = np.ascontiguousarray(samples[start : start + 960]).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return out.getvalue()


@pytest.mark.parametrize(("layout", "channels"), [("5.1", 6), ("7.1", 8)])
def test_surround_opus_decodes_to_the_engines_samples(layout: str, channels: int) -> None:
    """Opus decodes to planar float; at 8 channels PyAV miscounts the planes, and those
    frames reach the resampler unjoined."""
    data = multichannel_opus(layout, channels)
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.audio[0].codec_context.channels == channels
    assert_same_as_engine(data, AudioExtension.OGG)
