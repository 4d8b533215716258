"""The whisper backend with the medical vocabulary, on dictations synthesised with espeak-ng.

The same dictation set and scoring as ``bench/vocabulary.py`` (``tests/fixtures/dictations.py``);
its report, ``bench/results/vocabulary.md``, has the figures and the naive strategies.
"""

from difflib import SequenceMatcher
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pytest

from processors.asr.base import AsrOptions, Transcript
from processors.asr.whisper import WhisperBackend
from processors.vocabulary import Vocabulary, default_vocabulary_path, load_vocabulary
from tests.fixtures.dictations import DICTATIONS, score, synthesise

pytestmark = pytest.mark.integration

CPU_THREADS = 2  # the test machine's cores; tiny.en takes ~1 s a clip per pass with beam 5

MISHEARD = DICTATIONS[[d.key for d in DICTATIONS].index("furosemide")]
MISHEARD_TERM = "furosemide"
# What tiny.en (int8, beam 5) wrote for MISHEARD, without and with the packaged vocabulary.
# The plain mishearing depends on the CPU's int8 kernels, so the test asserts the shape of
# the fix (only the misheard span changed, into the term), not one machine's words:
#   plain, Xeon of 2026-11-25:  "Give your most mind 40 milligrams for the pulmonary edema."
#   plain, Xeon of 2026-11-26:  "Give your osmide 40 milligrams for the pulmonary edema."
#   guarded, both:              "Give furosemide 40 milligrams for the pulmonary edema."


@pytest.fixture(scope="module")
def backend() -> WhisperBackend:
    return WhisperBackend(cpu_threads=CPU_THREADS)


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return load_vocabulary(default_vocabulary_path())


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, npt.NDArray[np.float32]]:
    directory = tmp_path_factory.mktemp("dictations")
    return {d.key: synthesise(d, directory) for d in DICTATIONS}


class Passes(NamedTuple):
    """One dictation recognised without and with the vocabulary."""

    plain: Transcript
    guarded: Transcript


@pytest.fixture(scope="module")
def passes(
    backend: WhisperBackend, vocabulary: Vocabulary, audio: dict[str, npt.NDArray[np.float32]]
) -> dict[str, Passes]:
    """Every dictation through ``transcribe`` with the vocabulary, once per module.

    The guarded strategy's own first pass is the plain one (same decoder settings, no
    hints), so it is kept as the without-vocabulary result rather than decoded again.
    """
    recognise = backend.recognise
    plain: list[Transcript] = []

    def keeping_plain(
        pcm: npt.NDArray[np.float32], options: AsrOptions, **hints: str | None
    ) -> Transcript:
        result = recognise(pcm, options, **hints)
        if not hints:
            plain.append(result)
        return result

    out: dict[str, Passes] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backend, "recognise", keeping_plain)
        for d in DICTATIONS:
            guarded = backend.transcribe(audio[d.key], AsrOptions(vocabulary=vocabulary.terms))
            out[d.key] = Passes(plain=plain.pop(), guarded=guarded)
    return out


def _text(transcript: Transcript) -> str:
    return " ".join(seg.text for seg in transcript.segments)


def _words(text: str) -> list[str]:
    return [w.strip(".,").casefold() for w in text.split()]


def test_vocabulary_fixes_a_misheard_drug_and_nothing_else(
    passes: dict[str, Passes], audio: dict[str, npt.NDArray[np.float32]]
) -> None:
    pcm = audio[MISHEARD.key]
    plain = _text(passes[MISHEARD.key].plain)
    guarded = passes[MISHEARD.key].guarded

    shown = f"plain: {plain!r}, with vocabulary: {_text(guarded)!r}"
    assert MISHEARD_TERM not in plain.casefold(), shown
    assert MISHEARD_TERM in _text(guarded).casefold(), shown
    # only the misheard words changed: one replaced span, and what replaced it is the term
    before, after = _words(plain), _words(_text(guarded))
    changes = [op for op in SequenceMatcher(a=before, b=after).get_opcodes() if op[0] != "equal"]
    assert len(changes) == 1, shown
    tag, _, _, b_start, b_end = changes[0]
    assert tag == "replace" and after[b_start:b_end] == [MISHEARD_TERM], shown
    # the rest of the sentence is what was said
    spoken = _words(MISHEARD.text.replace("forty", "40"))
    assert after == spoken, shown
    # and the new word has its time and probability
    term = next(w for seg in guarded.segments for w in seg.words if MISHEARD_TERM in w.word.lower())
    assert 0.0 <= term.start_s < term.end_s <= len(pcm) / 16_000 + 0.5
    assert 0.0 < term.confidence <= 1.0


def test_guarded_vocabulary_raises_recall_without_false_insertions(
    passes: dict[str, Passes], vocabulary: Vocabulary
) -> None:
    plain_recall = guarded_recall = 0
    insertions: dict[str, tuple[str, ...]] = {}
    for d in DICTATIONS:
        plain = score(d, _text(passes[d.key].plain), vocabulary.terms)
        guarded = score(d, _text(passes[d.key].guarded), vocabulary.terms)
        plain_recall += len(plain.recalled)
        guarded_recall += len(guarded.recalled)
        if guarded.inserted:
            insertions[d.key] = guarded.inserted

    said = sum(len(d.terms) for d in DICTATIONS)
    assert len(DICTATIONS) >= 10
    assert any(not d.terms for d in DICTATIONS), "dictations with no term catch insertions"
    assert insertions == {}, f"vocabulary terms written that were not said: {insertions}"
    assert guarded_recall >= plain_recall, f"recall {guarded_recall}/{said} < {plain_recall}"
    assert guarded_recall > plain_recall, "the vocabulary should recover misheard terms"


def test_empty_vocabulary_is_one_plain_pass(
    backend: WhisperBackend,
    audio: dict[str, npt.NDArray[np.float32]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []
    recognise = backend.recognise

    def counting(
        pcm: npt.NDArray[np.float32], options: AsrOptions, **kwargs: str | None
    ) -> Transcript:
        calls.append(kwargs)
        return recognise(pcm, options, **kwargs)

    monkeypatch.setattr(backend, "recognise", counting)
    backend.transcribe(audio["tablet"], AsrOptions())
    assert calls == [{}]
