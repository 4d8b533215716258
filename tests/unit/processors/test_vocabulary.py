"""The vocabulary: loading, relevance filtering and the insertion guard, on plain strings."""

from pathlib import Path

import pytest

from processors.vocabulary import (
    MAX_TERM_CHARS,
    MAX_TERMS,
    Replacement,
    VocabularyError,
    accepted_replacements,
    default_vocabulary_path,
    find_terms,
    load_vocabulary,
    parse_terms,
    relevant_terms,
    term_scores,
    unsupported_insertions,
)

TERMS = ("hydrochlorothiazide", "lisinopril", "morphine", "echocardiogram", "atrial fibrillation")


def test_parse_strips_skips_comments_and_blanks_and_dedupes() -> None:
    lines = ["# drugs", "", "  Metformin  ", "metformin", "atrial   fibrillation", "   # indented"]
    assert parse_terms(lines, source="v.txt") == ("Metformin", "atrial fibrillation")


def test_parse_rejects_a_long_term_naming_file_and_line() -> None:
    with pytest.raises(VocabularyError, match=r"v\.txt:2: term longer"):
        parse_terms(["ok", "x" * (MAX_TERM_CHARS + 1)], source="v.txt")


def test_parse_rejects_too_many_terms() -> None:
    with pytest.raises(VocabularyError, match=f"more than {MAX_TERMS} terms"):
        parse_terms((f"term{i}" for i in range(MAX_TERMS + 1)), source="v.txt")


def test_load_reads_file_and_keeps_only_its_name(tmp_path: Path) -> None:
    path = tmp_path / "cardio.txt"
    path.write_text("# cardiology\nmetoprolol\nwarfarin\n", encoding="utf-8")
    vocabulary = load_vocabulary(path)
    assert vocabulary.terms == ("metoprolol", "warfarin")
    assert vocabulary.source == "cardio.txt"


@pytest.mark.parametrize("content", [b"", b"# only a comment\n\n", b"\xff\xfe\x00bad"])
def test_load_rejects_empty_or_undecodable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes(content)
    with pytest.raises(VocabularyError):
        load_vocabulary(path)


def test_load_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match="cannot read"):
        load_vocabulary(tmp_path / "absent.txt")


def test_default_vocabulary_is_packaged_and_sized() -> None:
    vocabulary = load_vocabulary(default_vocabulary_path())
    assert vocabulary.source == "medical_vocabulary.txt"
    assert 150 <= len(vocabulary.terms) <= 300
    assert {"hydrochlorothiazide", "colonoscopy", "mitral valve"} <= set(vocabulary.terms)


def test_find_terms_matches_whole_words_only() -> None:
    text = "Echocardiogram shows atrial fibrillation; amorphine is not a drug."
    assert find_terms(TERMS, text) == ("echocardiogram", "atrial fibrillation")


def test_term_scores_join_words_heard_apart() -> None:
    scores = term_scores(TERMS, "order an echo cardio gram".split())
    assert scores["echocardiogram"] == 100.0
    assert scores["lisinopril"] < 50


def test_relevant_terms_are_those_resembling_what_was_heard() -> None:
    heard = "Take hydrochlorosphere light in the morning."
    assert relevant_terms(TERMS, heard)[0] == "hydrochlorothiazide"
    assert "lisinopril" not in relevant_terms(TERMS, heard)


def test_relevant_terms_empty_for_plain_speech() -> None:
    assert relevant_terms(TERMS, "The patient will come back in two weeks.") == ()


def test_relevant_terms_bounded_by_limit() -> None:
    assert len(relevant_terms(TERMS, "hydrochlorothiazide lisinopril morphine", limit=2)) == 2


def test_short_terms_need_an_exact_match() -> None:
    assert relevant_terms(("ECG", "CT"), "the egg and the cat") == ()
    assert relevant_terms(("ECG",), "an ECG today") == ("ECG",)


def test_unsupported_insertions_flags_terms_nothing_resembles() -> None:
    plain = "Take hydrochlorosphere light in the morning."
    boosted = "hydrochlorothiazide, lisinopril amorphine"
    assert unsupported_insertions(TERMS, boosted, plain) == ("lisinopril",)


def test_guard_takes_a_term_over_words_that_sound_like_it() -> None:
    plain = "Give your most mind 40 milligrams".split()
    boosted = "Give furosemide 40 milligrams".split()
    confidence = [0.41, 0.37, 0.05, 0.58, 0.73, 0.96]
    assert accepted_replacements(plain, boosted, ("furosemide",), plain_confidence=confidence) == [
        Replacement(1, 4, 1, 2)
    ]


def test_guard_rejects_a_term_over_unrelated_words() -> None:
    plain = "Take hydrochlorosphere light in the morning.".split()
    boosted = "Take hydrochlorothiazide lisinopril amorphine.".split()
    # lisinopril over "light in the" is refused; the term over the word it resembles is taken
    assert accepted_replacements(plain, boosted, TERMS) == [Replacement(1, 2, 1, 2)]


def test_guard_rejects_pure_insertions() -> None:
    plain = "Take the tablet in the morning.".split()
    boosted = "Take the tablet lisinopril in the morning.".split()
    assert accepted_replacements(plain, boosted, TERMS) == []


def test_guard_keeps_words_the_plain_pass_was_sure_of() -> None:
    plain = "Take the tablet in the morning.".split()
    boosted = "Take the morphine in the morning.".split()
    confident = [0.83, 0.62, 0.98, 0.99, 0.99, 1.0]
    assert accepted_replacements(plain, boosted, ("morphine",), threshold=0.0) != []
    assert accepted_replacements(plain, boosted, ("morphine",), plain_confidence=confident) == []


def test_guard_ignores_non_term_changes() -> None:
    plain = "Stop clapping on the little five days".split()
    boosted = "Stop clapping on all five veins".split()
    assert accepted_replacements(plain, boosted, TERMS) == []


def test_guard_never_swaps_a_heard_term_for_a_similar_one() -> None:
    # seen in CI: the plain pass heard the right term, the boosted pass wrote its neighbour
    plain = "Order an echocardiogram to assess the mitral valve.".split()
    boosted = "Order an electrocardiogram to assess the mitral valve.".split()
    unsure = [0.9, 0.8, 0.5, 0.9, 0.9, 0.9, 0.7, 0.6]
    offered: tuple[str, ...] = ("echocardiogram", "electrocardiogram")
    replaced = accepted_replacements(plain, boosted, offered, plain_confidence=unsure)
    assert replaced == []
    # a misheard term is still fixed when other offered terms resemble it less
    plain = "Give your most mind 40 milligrams".split()
    boosted = "Give furosemide 40 milligrams".split()
    low = [0.41, 0.37, 0.05, 0.58, 0.73, 0.96]
    offered = ("furosemide", "fluoxetine", "metoprolol")
    assert accepted_replacements(plain, boosted, offered, plain_confidence=low) == [
        Replacement(1, 4, 1, 2)
    ]
