"""Decoding with PyAV and cutting long audio: real codecs, real whisper, no network."""

import itertools
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from processors.asr.base import AsrOptions, Transcript
from processors.asr.whisper import WhisperBackend
from processors.audio import SAMPLE_RATE, decode
from processors.chunking import chunk_bounds, transcribe_chunked
from processors.errors import ErrorCode, TaskError
from schemas.ids import AudioExtension
from schemas.transcript import Segment, Word
from tests.fixtures.audio import silence_wav, spoken_clip

SENTENCE = "Please schedule a chest x ray for tomorrow morning."


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.mark.parametrize("ext", list(AudioExtension))
def test_every_supported_codec_decodes_to_16k_mono(work: Path, ext: AudioExtension) -> None:
    pcm = decode(spoken_clip(SENTENCE, ext.value, work), ext)
    assert pcm.samples.dtype == np.float32 and pcm.samples.ndim == 1
    assert 2.0 < pcm.duration_s < 6.0
    assert float(np.abs(pcm.samples).max()) <= 1.0
    assert float(np.sqrt(np.mean(np.square(pcm.samples)))) > 0.01  # there is speech in it


def test_garbage_is_undecodable() -> None:
    with pytest.raises(TaskError) as info:
        decode(b"\x00\x01garbage" * 100, AudioExtension.M4A)
    assert info.value.code is ErrorCode.AUDIO_UNDECODABLE and not info.value.transient


def test_a_blip_is_empty(work: Path) -> None:
    with pytest.raises(TaskError) as info:
        decode(silence_wav(0.05, work / "blip.wav").read_bytes(), AudioExtension.WAV)
    assert info.value.code is ErrorCode.AUDIO_EMPTY


def test_too_long_stops_decoding(work: Path) -> None:
    with pytest.raises(TaskError) as info:
        decode(spoken_clip(SENTENCE, "mp3", work), AudioExtension.MP3, max_duration_s=1.0)
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
    pcm = decode(spoken_clip(SENTENCE, "m4a", work), AudioExtension.M4A)
    transcript, info = transcribe_chunked(backend, pcm.samples, AsrOptions(), 60.0)
    assert len(info.chunks) == 1
    text = " ".join(s.text for s in transcript.segments).lower()
    assert "schedule" in text and "tomorrow morning" in text
    words = [w for s in transcript.segments for w in s.words]
    assert all(0 <= w.start_s <= w.end_s <= pcm.duration_s + 0.5 for w in words)


class ChunkRecorder:
    """A backend that answers each chunk with one word naming the chunk's length.

    With ``meet`` set, every call waits at a barrier of that many parties: the calls
    only get through if that many are in flight at once. ``service_s`` is a server's
    time per call (calls other than the failing one).
    """

    name = "recorder"
    model = "recorder"
    confidence_meaning = ""

    def __init__(
        self, parallel: int, meet: int = 0, fail_on_call: int = -1, service_s: float = 0.0
    ) -> None:
        self.parallel_chunks = parallel
        self._service_s = service_s
        self._barrier = threading.Barrier(meet, timeout=10) if meet else None
        self._fail_on = fail_on_call
        self._lock = threading.Lock()
        self.calls = 0

    def transcribe(self, pcm: npt.NDArray[np.float32], options: AsrOptions) -> Transcript:
        with self._lock:
            call = self.calls
            self.calls += 1
        if self._barrier is not None:
            self._barrier.wait()
        if call == self._fail_on:
            raise TaskError(ErrorCode.ASR_UNAVAILABLE, "down", transient=True)
        threading.Event().wait(self._service_s)
        length = round(len(pcm) / SAMPLE_RATE, 3)
        word = Word(word=str(length), start_s=0.5, end_s=1.0, confidence=0.9)
        return Transcript([Segment(start_s=0.0, end_s=1.0, text=str(length), words=[word])], "en")

    def check(self) -> None:
        """Always ready."""


def test_parallel_chunks_are_in_flight_together_and_stitched_in_order() -> None:
    samples = np.zeros(SAMPLE_RATE * 25, dtype=np.float32)  # 10 + 10 + 5 s
    backend = ChunkRecorder(parallel=3, meet=3)
    transcript, info = transcribe_chunked(
        backend, samples, AsrOptions(), 10.0, parallel=backend.parallel_chunks
    )
    assert backend.calls == 3 == len(info.chunks)
    offsets = [start for start, _ in info.chunks]
    lengths = [round(end - start, 3) for start, end in info.chunks]
    assert [s.text for s in transcript.segments] == [str(n) for n in lengths]
    assert [s.words[0].start_s for s in transcript.segments] == [o + 0.5 for o in offsets]


def test_a_failing_chunk_fails_the_recording_and_later_chunks_are_not_sent() -> None:
    samples = np.zeros(SAMPLE_RATE * 60, dtype=np.float32)  # six chunks of 10 s
    backend = ChunkRecorder(parallel=2, fail_on_call=0, service_s=0.5)
    with pytest.raises(TaskError) as info:
        transcribe_chunked(backend, samples, AsrOptions(), 10.0, parallel=2)
    assert info.value.code is ErrorCode.ASR_UNAVAILABLE and info.value.transient
    # the failed call's thread may take one more chunk before the rest are cancelled
    assert backend.calls <= 3
