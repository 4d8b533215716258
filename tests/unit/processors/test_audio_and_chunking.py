"""Decoding with PyAV and cutting long audio: real codecs, real whisper, no network."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from processors.asr.base import AsrOptions
from processors.asr.whisper import WhisperBackend
from processors.audio import SAMPLE_RATE, decode
from processors.chunking import chunk_bounds, transcribe_chunked
from processors.errors import ErrorCode, TaskError
from tests.fixtures.audio import silence_wav, spoken_clip

SENTENCE = "Please schedule a chest x ray for tomorrow morning."


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.mark.parametrize("ext", ["m4a", "mp3", "ogg", "flac", "wav"])
def test_every_supported_codec_decodes_to_16k_mono(work: Path, ext: str) -> None:
    pcm = decode(spoken_clip(SENTENCE, ext, work))
    assert pcm.samples.dtype == np.float32 and pcm.samples.ndim == 1
    assert 2.0 < pcm.duration_s < 6.0
    assert float(np.abs(pcm.samples).max()) <= 1.0
    assert float(np.sqrt(np.mean(np.square(pcm.samples)))) > 0.01  # there is speech in it


def test_garbage_is_undecodable() -> None:
    with pytest.raises(TaskError) as info:
        decode(b"\x00\x01garbage" * 100)
    assert info.value.code is ErrorCode.AUDIO_UNDECODABLE and not info.value.transient


def test_a_blip_is_empty(work: Path) -> None:
    with pytest.raises(TaskError) as info:
        decode(silence_wav(0.05, work / "blip.wav").read_bytes())
    assert info.value.code is ErrorCode.AUDIO_EMPTY


def test_too_long_stops_decoding(work: Path) -> None:
    with pytest.raises(TaskError) as info:
        decode(spoken_clip(SENTENCE, "mp3", work), max_duration_s=1.0)
    assert info.value.code is ErrorCode.AUDIO_TOO_LONG


def test_chunks_cover_the_audio_and_cut_at_quiet_points() -> None:
    rng = np.random.default_rng(7)
    loud = rng.uniform(-0.5, 0.5, SAMPLE_RATE * 23).astype(np.float32)
    quiet_at = int(SAMPLE_RATE * 8.6)
    loud[quiet_at : quiet_at + SAMPLE_RATE // 10] = 0.0  # a 100 ms pause before the 10 s limit
    bounds = chunk_bounds(loud, 10.0)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(loud)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    assert all(end - start <= SAMPLE_RATE * 10 for start, end in bounds)
    assert quiet_at <= bounds[0][1] <= quiet_at + SAMPLE_RATE // 10


def test_short_clip_is_one_chunk_and_transcribed(work: Path) -> None:
    backend = WhisperBackend(beam_size=1)
    pcm = decode(spoken_clip(SENTENCE, "m4a", work))
    transcript, info = transcribe_chunked(backend, pcm.samples, AsrOptions(), 60.0)
    assert len(info.chunks) == 1
    text = " ".join(s.text for s in transcript.segments).lower()
    assert "schedule" in text and "tomorrow morning" in text
    words = [w for s in transcript.segments for w in s.words]
    assert all(0 <= w.start_s <= w.end_s <= pcm.duration_s + 0.5 for w in words)
