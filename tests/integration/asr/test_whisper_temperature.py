"""``MEDVOICE_WHISPER__TEMPERATURE_FALLBACK=false``: the same audio gives the same text.

Reversed speech makes tiny.en's temperature-0 output look degenerate, so faster-whisper's
default re-decodes it by random sampling: four runs gave four different texts when this
test was written. With the fallback off, every run must give one text.
"""

import numpy as np
import pytest
from faster_whisper import decode_audio

from processors.asr.base import AsrOptions
from processors.asr.factory import make_backend
from processors.asr.whisper import WhisperBackend
from processors.audio import SAMPLE_RATE
from processors.settings import WorkerSettings
from tests.fixtures.audio import speak_wav

pytestmark = pytest.mark.integration

SPEECH = "the patient reports chest pain radiating to the left arm since this morning " * 3


def test_without_fallback_the_text_is_reproducible(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    wav = speak_wav(SPEECH, tmp_path_factory.mktemp("temperature") / "speech.wav")
    reversed_speech = decode_audio(str(wav), sampling_rate=SAMPLE_RATE)[::-1].astype(np.float32)
    monkeypatch.setenv("MEDVOICE_WHISPER__TEMPERATURE_FALLBACK", "false")
    monkeypatch.setenv("MEDVOICE_WHISPER__BEAM_SIZE", "1")
    backend = make_backend(WorkerSettings())
    assert isinstance(backend, WhisperBackend)
    texts = {
        " ".join(s.text for s in backend.recognise(reversed_speech, AsrOptions()).segments)
        for _ in range(4)
    }
    assert len(texts) == 1 and texts != {""}
