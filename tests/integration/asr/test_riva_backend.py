"""RivaBackend against a real gRPC server speaking the Riva protocol (whisper behind it)."""

import logging
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import jiwer
import numpy as np
import numpy.typing as npt
import pytest
from pydantic import SecretStr

from processors.asr.base import AsrOptions
from processors.asr.riva import RivaBackend
from processors.asr.whisper import WhisperBackend
from processors.audio import SAMPLE_RATE, decode
from processors.errors import ErrorCode, TaskError
from processors.settings import RivaOptions
from schemas.ids import AudioExtension
from tests.fixtures.riva_server import DEFAULT_MODEL, RivaTestServer, make_tls_files

pytestmark = pytest.mark.integration

SENTENCE = "The patient reports chest pain radiating to the left arm since yesterday morning."
WER_BOUND = 0.35  # tiny.en on espeak-ng's voice: about 0.0-0.1 measured; 0.35 leaves room
LEAKY_DETAILS = "patient Jane Doe at 10.1.2.3"  # what a server might echo; must not leak
MIB = 1024 * 1024

BackendFactory = Callable[..., RivaBackend]


def _wer(reference: str, hypothesis: str) -> float:
    ref = " ".join(re.sub(r"[^\w\s']", " ", reference.lower()).split())
    hyp = " ".join(re.sub(r"[^\w\s']", " ", hypothesis.lower()).split())
    return float(jiwer.wer(ref, hyp))


@pytest.fixture(scope="module")
def whisper() -> WhisperBackend:
    """One tiny.en model for every server of this module."""
    return WhisperBackend()


@pytest.fixture(scope="module")
def server(whisper: WhisperBackend) -> Iterator[RivaTestServer]:
    """The plaintext test server."""
    with RivaTestServer(whisper=whisper) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_faults(server: RivaTestServer) -> Iterator[None]:
    yield
    server.fail_next(0)
    server.resume()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> npt.NDArray[np.float32]:
    """SENTENCE spoken by espeak-ng, decoded to 16 kHz mono float32."""
    wav = tmp_path_factory.mktemp("riva") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), SENTENCE], check=True, timeout=30)
    return decode(wav.read_bytes(), AudioExtension.WAV).samples


@pytest.fixture
def make_backend(server: RivaTestServer) -> Iterator[BackendFactory]:
    """Backends on ``server`` (or ``uri=``) with the given RivaOptions fields; closed after."""
    made: list[RivaBackend] = []

    def factory(uri: str | None = None, **options: Any) -> RivaBackend:
        backend = RivaBackend(uri or server.uri, RivaOptions(**options))
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        backend.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_speech_comes_back_with_words_and_times(
    server: RivaTestServer, make_backend: BackendFactory, speech: npt.NDArray[np.float32]
) -> None:
    before = len(server.configs)
    result = make_backend().transcribe(speech, AsrOptions())

    text = " ".join(s.text for s in result.segments)
    assert _wer(SENTENCE, text) < WER_BOUND, text
    assert result.language == "en"
    words = [w for s in result.segments for w in s.words]
    assert len(words) >= 8
    assert all(w.start_s <= w.end_s for w in words)
    assert [w.start_s for w in words] == sorted(w.start_s for w in words)
    assert words[-1].end_s <= len(speech) / SAMPLE_RATE + 0.1
    assert words[-1].end_s > 1.0  # times came in ms and were converted, not taken as s
    for seg in result.segments:
        assert (seg.start_s, seg.end_s) == (seg.words[0].start_s, seg.words[-1].end_s)
        assert seg.speaker is None
    assert all(w.speaker is None for w in words)
    assert all(0.0 < w.confidence <= 1.0 for w in words)

    (config,) = server.configs[before:]
    assert config.encoding == 1  # LINEAR_PCM
    assert config.sample_rate_hertz == SAMPLE_RATE
    assert config.audio_channel_count == 1
    assert config.language_code == "en-US"
    assert config.max_alternatives == 1
    assert config.enable_automatic_punctuation
    assert config.enable_word_time_offsets
    assert config.model == ""
    assert not config.speech_contexts
    assert not config.HasField("diarization_config")
    assert server.requests[-1].audio_bytes == 2 * len(speech)  # int16 samples


def test_vocabulary_boost_and_model_reach_the_server(
    server: RivaTestServer, make_backend: BackendFactory, speech: npt.NDArray[np.float32]
) -> None:
    backend = make_backend(boost_score=42.5, model=DEFAULT_MODEL)
    vocabulary = ("metoprolol", "atrial fibrillation")
    before = len(server.configs)
    backend.transcribe(speech[: SAMPLE_RATE * 2], AsrOptions(vocabulary=vocabulary))

    (config,) = server.configs[before:]
    (context,) = config.speech_contexts
    assert tuple(context.phrases) == vocabulary
    assert context.boost == pytest.approx(42.5)
    assert config.model == DEFAULT_MODEL
    assert backend.model == DEFAULT_MODEL


def test_diarization_settings_and_speaker_tags(
    server: RivaTestServer, make_backend: BackendFactory, speech: npt.NDArray[np.float32]
) -> None:
    backend = make_backend(diarization=True, max_speakers=3)
    before = len(server.configs)
    two_sentences = np.concatenate([speech, np.zeros(SAMPLE_RATE, np.float32), speech])
    result = backend.transcribe(two_sentences, AsrOptions())

    (config,) = server.configs[before:]
    assert config.diarization_config.enable_speaker_diarization
    assert config.diarization_config.max_speaker_count == 3
    assert len(result.segments) >= 2
    for n, seg in enumerate(result.segments):  # the server's convention: n % speakers + 1
        assert seg.speaker == n % 3 + 1
        assert {w.speaker for w in seg.words} == {n % 3 + 1}


def test_without_word_times_segments_span_the_audio(
    server: RivaTestServer, make_backend: BackendFactory, speech: npt.NDArray[np.float32]
) -> None:
    backend = make_backend(word_time_offsets=False, automatic_punctuation=False)
    before = len(server.configs)
    result = backend.transcribe(speech, AsrOptions())

    (config,) = server.configs[before:]
    assert not config.enable_word_time_offsets
    assert not config.enable_automatic_punctuation
    assert result.segments
    assert all(not s.words for s in result.segments)
    assert not re.search(r"[.,]", " ".join(s.text for s in result.segments))
    assert result.segments[0].start_s == 0.0
    assert result.segments[-1].end_s == pytest.approx(len(speech) / SAMPLE_RATE, abs=0.01)
    for seg in result.segments:
        assert seg.start_s < seg.end_s


def test_credentials_are_sent_as_metadata(
    server: RivaTestServer, make_backend: BackendFactory, speech: npt.NDArray[np.float32]
) -> None:
    backend = make_backend(api_key=SecretStr("key-123"), function_id="fn-abc")
    before = len(server.requests)
    backend.check()
    backend.transcribe(speech[:SAMPLE_RATE], AsrOptions())

    received = server.requests[before:]
    assert [r.method for r in received] == ["GetRivaSpeechRecognitionConfig", "Recognize"]
    for request in received:
        assert ("function-id", "fn-abc") in request.metadata
        assert ("authorization", "Bearer key-123") in request.metadata


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (grpc.StatusCode.UNAVAILABLE, ErrorCode.ASR_UNAVAILABLE, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ErrorCode.ASR_UNAVAILABLE, True),
        (grpc.StatusCode.INTERNAL, ErrorCode.ASR_UNAVAILABLE, True),
        (grpc.StatusCode.ABORTED, ErrorCode.ASR_UNAVAILABLE, True),
        (grpc.StatusCode.UNAUTHENTICATED, ErrorCode.ASR_UNAVAILABLE, True),
        (grpc.StatusCode.INVALID_ARGUMENT, ErrorCode.ASR_REJECTED, False),
        (grpc.StatusCode.FAILED_PRECONDITION, ErrorCode.ASR_REJECTED, False),
    ],
)
def test_server_errors_map_to_safe_task_errors(
    server: RivaTestServer,
    make_backend: BackendFactory,
    caplog: pytest.LogCaptureFixture,
    status: grpc.StatusCode,
    code: ErrorCode,
    transient: bool,
) -> None:
    server.fail_next(1, status, LEAKY_DETAILS)
    before = len(server.configs)
    with caplog.at_level(logging.WARNING), pytest.raises(TaskError) as caught:
        make_backend().transcribe(np.zeros(SAMPLE_RATE // 2, np.float32), AsrOptions())

    assert (caught.value.code, caught.value.transient) == (code, transient)
    assert len(server.configs) == before + 1
    for text in ("Jane", "10.1.2.3", server.uri, "127.0.0.1"):
        assert text not in caught.value.message
        assert text not in caplog.text
    assert [r.grpc_code for r in caplog.records if hasattr(r, "grpc_code")] == [status.name]
    with server.faults.lock:
        assert server.faults.remaining == 0  # exactly one call was failed


@pytest.mark.parametrize(
    ("options", "asr_options"),
    [
        ({"model": "not-deployed"}, AsrOptions()),  # the server: model not available
        ({}, AsrOptions(language="de")),  # the server: no model for the language
    ],
)
def test_requests_the_server_refuses_are_permanent(
    server: RivaTestServer,
    make_backend: BackendFactory,
    options: dict[str, Any],
    asr_options: AsrOptions,
) -> None:
    with pytest.raises(TaskError) as caught:
        make_backend(**options).transcribe(np.zeros(SAMPLE_RATE // 2, np.float32), asr_options)

    assert caught.value.code == ErrorCode.ASR_REJECTED
    assert not caught.value.transient
    assert "not available" not in caught.value.message  # our words, not the server's


def test_deadline_is_applied_and_transient(
    server: RivaTestServer, make_backend: BackendFactory
) -> None:
    server.hold()
    with pytest.raises(TaskError) as caught:
        make_backend(deadline_s=0.3).transcribe(np.zeros(1600, np.float32), AsrOptions())

    assert (caught.value.code, caught.value.transient) == (ErrorCode.ASR_UNAVAILABLE, True)


def test_audio_over_4_mib_is_accepted(
    server: RivaTestServer, make_backend: BackendFactory, speech: npt.NDArray[np.float32]
) -> None:
    long = np.concatenate([speech, np.zeros(SAMPLE_RATE * 135, np.float32)])
    assert 2 * len(long) > 4 * MIB  # past gRPC's default 4 MiB message limit
    result = make_backend().transcribe(long, AsrOptions())

    assert server.requests[-1].audio_bytes == 2 * len(long)
    assert _wer(SENTENCE, result.segments[0].text) < WER_BOUND


def test_audio_over_the_configured_limit_is_rejected_locally(
    server: RivaTestServer, make_backend: BackendFactory
) -> None:
    before = len(server.requests)
    with pytest.raises(TaskError) as caught:
        make_backend(max_message_mb=4).transcribe(
            np.zeros(SAMPLE_RATE * 140, np.float32), AsrOptions()
        )

    assert (caught.value.code, caught.value.transient) == (ErrorCode.ASR_REJECTED, False)
    assert len(server.requests) == before  # nothing was sent


def test_check_against_the_server(server: RivaTestServer, make_backend: BackendFactory) -> None:
    before = len(server.requests)
    make_backend().check()
    make_backend(model=DEFAULT_MODEL).check()
    assert len(server.requests) == before + 2

    with pytest.raises(TaskError) as caught:
        make_backend(model="not-deployed").check()
    assert (caught.value.code, caught.value.transient) == (ErrorCode.ASR_UNAVAILABLE, True)


def test_check_and_transcribe_fail_transiently_on_a_closed_port(
    make_backend: BackendFactory,
) -> None:
    backend = make_backend(uri=f"127.0.0.1:{_free_port()}")
    with pytest.raises(TaskError) as caught:
        backend.check()
    assert (caught.value.code, caught.value.transient) == (ErrorCode.ASR_UNAVAILABLE, True)
    with pytest.raises(TaskError) as caught:
        backend.transcribe(np.zeros(1600, np.float32), AsrOptions())
    assert (caught.value.code, caught.value.transient) == (ErrorCode.ASR_UNAVAILABLE, True)


def test_tls_with_a_private_ca(
    whisper: WhisperBackend,
    make_backend: BackendFactory,
    speech: npt.NDArray[np.float32],
    tmp_path: Path,
) -> None:
    tls = make_tls_files(tmp_path)
    with RivaTestServer(whisper=whisper, tls=tls) as tls_server:
        backend = make_backend(
            uri=tls_server.uri, use_ssl=True, ssl_ca_file=tls.ca_cert, function_id="fn-tls"
        )
        backend.check()
        result = backend.transcribe(speech, AsrOptions())
        assert _wer(SENTENCE, " ".join(s.text for s in result.segments)) < WER_BOUND
        assert all(("function-id", "fn-tls") in r.metadata for r in tls_server.requests)

        untrusting = make_backend(uri=tls_server.uri, use_ssl=True)  # system roots only
        with pytest.raises(TaskError) as caught:
            untrusting.check()
        assert (caught.value.code, caught.value.transient) == (ErrorCode.ASR_UNAVAILABLE, True)
        plaintext = make_backend(uri=tls_server.uri)
        with pytest.raises(TaskError):
            plaintext.check()
