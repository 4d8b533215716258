"""The protocol every ASR backend implements."""

from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from schemas.transcript import Segment


class AsrOptions(NamedTuple):
    """What a caller may ask of one recognition."""

    language: str = "en"
    """ISO 639-1 language of the dictation."""
    vocabulary: tuple[str, ...] = ()
    """Medical terms and phrases the backend should favour."""


class Transcript(NamedTuple):
    """A backend's result for one stretch of audio, times relative to its start."""

    segments: list[Segment]
    """Recognised segments with their words."""
    language: str
    """Language the backend transcribed in."""


class AsrBackend(Protocol):
    """A speech recogniser. ``transcribe`` blocks: callers run it off the event loop."""

    name: str
    model: str
    confidence_meaning: str
    parallel_chunks: int
    """Chunks of one recording it may be sent at once (1: one after another)."""

    def transcribe(self, pcm: npt.NDArray[np.float32], options: AsrOptions) -> Transcript:
        """Recognise 16 kHz mono float32 ``pcm``.

        Raises:
            TaskError: transient (backend unavailable) or permanent (request rejected).
        """
        ...

    def check(self) -> None:
        """Raise if the backend cannot serve requests now (the worker's readiness)."""
        ...
