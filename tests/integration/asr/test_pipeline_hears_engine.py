"""The pipeline's text is faster-whisper's own text for the same file (issue 14 item 2).

A ~44 s dictation (two whisper windows) synthesised with espeak-ng and encoded per codec;
the pipeline path is the worker's: ``decode`` then ``pipeline.recognise`` (chunked, the
worker's default settings, bundled tiny.en); the engine path is ``WhisperModel.transcribe``
given the file itself, so faster-whisper decodes it with its own ``decode_audio``. Before
the worker decoded like the engine (s16, then / 32768) the texts differed on every codec
here: tiny.en's beam search turns 1.5e-5 differences into other words.
"""

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest

from processors.asr.factory import make_backend
from processors.asr.whisper import WhisperBackend
from processors.audio import SAMPLE_RATE, decode
from processors.pipeline import PipelineContext, recognise
from processors.settings import WorkerSettings
from schemas.events import AudioSubmitted
from schemas.ids import AudioExtension, audio_object_key
from tests.fixtures.audio import encode, speak_wav

pytestmark = pytest.mark.integration

DICTATION = (
    "The patient is a sixty two year old man with a history of hypertension who presents "
    "with shortness of breath on exertion for two weeks. He denies chest pain, palpitations "
    "or syncope. On examination his blood pressure was one hundred and fifty over ninety and "
    "his heart sounds were normal. There were fine crackles at both lung bases and mild "
    "pitting oedema of the ankles. An echocardiogram showed an ejection fraction of forty "
    "percent. We will start a low dose of a beta blocker and an ace inhibitor, and review "
    "him in clinic in four weeks with repeat blood tests. Please send a copy of this letter "
    "to his general practitioner and to the cardiology nurse specialist."
)
CODECS = [AudioExtension.M4A, AudioExtension.MP3, AudioExtension.OGG, AudioExtension.WAV]


@pytest.fixture(scope="module")
def settings() -> WorkerSettings:
    """The worker's defaults (whisper backend, tiny.en, beam 5, 60 s chunks, no vocabulary)."""
    return WorkerSettings()


@pytest.fixture(scope="module")
def context(settings: WorkerSettings) -> PipelineContext:
    backend = make_backend(settings)
    assert isinstance(backend, WhisperBackend)
    pool = ThreadPoolExecutor(1)
    # recognise() touches neither S3 nor the executors.
    return PipelineContext(settings, cast(Any, None), backend, pool, pool, pool)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speak_wav(DICTATION, tmp_path_factory.mktemp("engine-text") / "dictation.wav")


def engine_text(context: PipelineContext, path: Path) -> str:
    """faster-whisper transcribing the file itself, with the options the worker passes."""
    backend = cast(WhisperBackend, context.backend)
    segments, _ = backend._model.transcribe(
        str(path),
        language=None,  # tiny.en is English-only; the worker passes None for it too
        beam_size=context.settings.whisper.beam_size,
        word_timestamps=True,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    return " ".join(s.text.strip() for s in segments if s.text.strip())


@pytest.mark.parametrize("ext", CODECS)
def test_the_pipeline_writes_the_engines_text(
    context: PipelineContext, spoken: Path, ext: AudioExtension
) -> None:
    data = spoken.read_bytes() if ext is AudioExtension.WAV else encode(spoken, ext.value)
    path = spoken.with_name(f"dictation.{ext.value}")
    path.write_bytes(data)
    pcm = decode(data, ext, max_duration_s=context.settings.worker.max_audio_s)
    assert pcm.duration_s > 30.0  # two whisper windows
    assert len(pcm.samples) <= context.settings.asr.chunk_s * SAMPLE_RATE  # one chunk
    event = AudioSubmitted(
        task_id=uuid.uuid4(),
        user_id="dr_a",
        file_id="f1",
        file_extension=ext,
        object_key=audio_object_key("dr_a", "f1", ext),
    )
    doc = recognise(context, event, pcm)
    expected = engine_text(context, path)
    assert len(expected.split()) > 80  # the engine heard the dictation
    assert doc.text == expected
