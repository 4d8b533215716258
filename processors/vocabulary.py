"""The medical vocabulary: loading it, and keeping it from putting words in a clinician's mouth.

A vocabulary boosts recognition of terms a general model mishears, but a boosted decoder can
also write a listed term that was never said. The guard here is backend independent and works
on plain strings: offer only the terms that resemble what an unboosted pass heard
(``relevant_terms``), and accept a boosted pass's change only where it writes a vocabulary
term over words that resemble it (``accepted_replacements``).
"""

import difflib
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
from rapidfuzz import fuzz, process

MAX_TERMS = 5000  # a file, not a prompt: only the relevant few reach the decoder per request
MAX_TERM_CHARS = 80  # longer than any drug, procedure or anatomy name; longer is a mistake
RELEVANCE_THRESHOLD = 55.0  # fuzz.ratio (0-100) of a term against heard words; tuned in bench/
SUPPORT_THRESHOLD = 55.0  # the same measure for the words a boosted term replaces
MAX_RELEVANT_TERMS = 8  # few, so absent terms tempt the decoder less (tuned in bench/)
EXACT_ONLY_CHARS = 4  # terms this short ("CT", "ECG") fuzzy-match too much: exact only
MAX_SPAN_EXTRA_WORDS = 3  # a term may be heard as up to this many more words ("echo cardio gram")
SHORT_TERM_CHARS = 10  # below this, each missing character costs SHORT_TERM_PENALTY points:
SHORT_TERM_PENALTY = 3.0  # a ratio over few characters is noise ("oedema" vs "order an": 62)
CONFIDENT_PLAIN = 0.8  # mean probability above which the plain pass's words are kept as heard

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


class VocabularyError(ValueError):
    """The vocabulary file cannot be used; the message names the file and the line."""


class Vocabulary(NamedTuple):
    """A loaded vocabulary."""

    terms: tuple[str, ...]
    """Distinct terms and phrases, in file order."""
    source: str
    """File name the terms came from (never the full path: it goes into transcripts)."""


class Replacement(NamedTuple):
    """A stretch of the plain pass's words to replace with the boosted pass's words."""

    plain_start: int
    """First plain word replaced."""
    plain_end: int
    """One past the last plain word replaced."""
    boosted_start: int
    """First boosted word taken."""
    boosted_end: int
    """One past the last boosted word taken."""


def default_vocabulary_path() -> Path:
    """The starter vocabulary shipped with the package (``processors/data``)."""
    return Path(str(resources.files("processors").joinpath("data", "medical_vocabulary.txt")))


def parse_terms(lines: Iterable[str], *, source: str) -> tuple[str, ...]:
    """Terms from vocabulary lines: stripped, blanks and ``#`` comments skipped, deduplicated.

    Args:
        lines: the file's lines.
        source: file name for error messages.

    Returns:
        The distinct terms in order of first appearance (case-insensitive duplicates dropped).

    Raises:
        VocabularyError: a term is too long, or there are too many terms.
    """
    terms: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        term = " ".join(line.split())
        if not term or term.startswith("#"):
            continue
        if len(term) > MAX_TERM_CHARS:
            raise VocabularyError(
                f"{source}:{number}: term longer than {MAX_TERM_CHARS} characters: {term[:40]}..."
            )
        terms.setdefault(term.casefold(), term)
        if len(terms) > MAX_TERMS:
            raise VocabularyError(f"{source}:{number}: more than {MAX_TERMS} terms")
    return tuple(terms.values())


def load_vocabulary(path: Path) -> Vocabulary:
    """Read a vocabulary file (UTF-8, one term or phrase per line).

    Raises:
        VocabularyError: the file is unreadable, not UTF-8, empty, or breaks a bound.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VocabularyError(f"{path}: cannot read the vocabulary: {exc}") from exc
    terms = parse_terms(text.splitlines(), source=path.name)
    if not terms:
        raise VocabularyError(f"{path.name}: no terms (only blank or '#' lines)")
    return Vocabulary(terms=terms, source=path.name)


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces: the form terms are compared in."""
    return " ".join(_NON_ALNUM.sub(" ", text.casefold()).split())


def find_terms(terms: Iterable[str], text: str) -> tuple[str, ...]:
    """The terms that occur in ``text`` as whole words (after ``normalise``)."""
    padded = f" {normalise(text)} "
    return tuple(t for t in terms if normalise(t) and f" {normalise(t)} " in padded)


def term_scores(terms: Sequence[str], heard: Sequence[str]) -> dict[str, float]:
    """How closely each term resembles some run of the heard words (0-100).

    Every run of 1 to (words in the term + ``MAX_SPAN_EXTRA_WORDS``) consecutive words is
    compared with spaces removed, so "echo cardio gram" scores high for "echocardiogram".
    """
    words = [w for w in (normalise(h) for h in heard) for w in w.split()]
    if not terms or not words:
        return dict.fromkeys(terms, 0.0)
    keys = [normalise(t).replace(" ", "") for t in terms]
    longest = max(len(normalise(t).split()) for t in terms) + MAX_SPAN_EXTRA_WORDS
    spans = sorted(
        {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, i + longest + 1)}
    )
    matrix = process.cdist(keys, spans, scorer=fuzz.ratio, dtype=np.float32)
    span_len = np.array([len(s) for s in spans])
    scores: dict[str, float] = {}
    for row, (term, key) in enumerate(zip(terms, keys, strict=True)):
        if len(key) <= EXACT_ONLY_CHARS:
            scores[term] = 100.0 if key in spans else 0.0
            continue
        fits = (span_len >= 0.6 * len(key)) & (span_len <= 1.6 * len(key))
        best = float(matrix[row][fits].max()) if fits.any() else 0.0
        scores[term] = max(0.0, best - SHORT_TERM_PENALTY * max(0, SHORT_TERM_CHARS - len(key)))
    return scores


def relevant_terms(
    terms: Sequence[str],
    heard: str,
    *,
    threshold: float = RELEVANCE_THRESHOLD,
    limit: int = MAX_RELEVANT_TERMS,
) -> tuple[str, ...]:
    """The terms worth offering to a boosted pass: those resembling what a plain pass heard.

    Args:
        terms: the vocabulary.
        heard: the plain (unboosted) transcript.
        threshold: least ``term_scores`` score to count as relevant.
        limit: at most this many, the best scoring first.

    Returns:
        Relevant terms, best first; empty when nothing resembles the vocabulary.
    """
    scores = term_scores(terms, heard.split())
    ranked = sorted((t for t in terms if scores[t] >= threshold), key=lambda t: -scores[t])
    return tuple(ranked[:limit])


def unsupported_insertions(
    terms: Sequence[str], boosted: str, plain: str, *, threshold: float = SUPPORT_THRESHOLD
) -> tuple[str, ...]:
    """Vocabulary terms in ``boosted`` that nothing in ``plain`` resembles (likely not said)."""
    found = [t for t in find_terms(terms, boosted) if t not in find_terms([t], plain)]
    scores = term_scores(found, plain.split())
    return tuple(t for t in found if scores[t] < threshold)


def accepted_replacements(
    plain: Sequence[str],
    boosted: Sequence[str],
    terms: Sequence[str],
    *,
    plain_confidence: Sequence[float] | None = None,
    threshold: float = SUPPORT_THRESHOLD,
) -> list[Replacement]:
    """Where to take the boosted pass's words instead of the plain pass's.

    The two word sequences are aligned. In each stretch where they differ, every vocabulary
    term the boosted words write (and the plain words do not) is matched with the run of
    plain words in that stretch that resembles it best; the term's words replace that run
    only when it scores at least ``threshold``, no other offered term resembles the run
    more (a heard "echocardiogram" is never turned into "electrocardiogram"), and the plain
    pass was not confident of it. All other differences (other words, pure insertions)
    keep the plain words.

    Args:
        plain: the unboosted pass's words, in order.
        boosted: the boosted pass's words, in order.
        terms: the terms the boosted pass was offered.
        plain_confidence: the plain words' probabilities (same length as ``plain``); a run
            whose mean is at least ``CONFIDENT_PLAIN`` is never replaced.
        threshold: least score (as ``term_scores``) of a term against the run it replaces.

    Returns:
        Non-overlapping replacements in order.
    """
    matcher = difflib.SequenceMatcher(
        a=[normalise(w) for w in plain], b=[normalise(w) for w in boosted], autojunk=False
    )
    accepted: list[Replacement] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "replace":
            continue
        for term in find_terms(terms, " ".join(boosted[j1:j2])):
            if find_terms([term], " ".join(plain[i1:i2])):
                continue
            written = _run_writing(term, boosted, j1, j2)
            start, end, score = _best_run(term, plain, i1, i2)
            if written is None or score < threshold:
                continue
            rivals = term_scores([t for t in terms if t != term], plain[start:end])
            if any(s > score for s in rivals.values()):
                continue
            if plain_confidence is not None:
                mean = sum(plain_confidence[start:end]) / (end - start)
                if mean >= CONFIDENT_PLAIN:
                    continue
            if not accepted or accepted[-1].plain_end <= start:
                accepted.append(Replacement(start, end, *written))
    return accepted


def _run_writing(term: str, words: Sequence[str], lo: int, hi: int) -> tuple[int, int] | None:
    """The first run of ``words[lo:hi]`` that is exactly ``term`` (after ``normalise``)."""
    target = normalise(term)
    for start in range(lo, hi):
        for end in range(start + 1, hi + 1):
            joined = normalise(" ".join(words[start:end]))
            if joined == target:
                return start, end
            if len(joined) > len(target):
                break
    return None


def _best_run(term: str, words: Sequence[str], lo: int, hi: int) -> tuple[int, int, float]:
    """The run of ``words[lo:hi]`` most like ``term``: (start, end, score as ``term_scores``)."""
    best = (lo, lo + 1, 0.0)
    width = len(normalise(term).split()) + MAX_SPAN_EXTRA_WORDS
    for start in range(lo, hi):
        for end in range(start + 1, min(hi, start + width) + 1):
            score = term_scores([term], words[start:end])[term]
            if score > best[2]:
                best = (start, end, score)
    return best
