"""The documentation points at things that exist, and the settings reference is complete.

- every relative link in README.md, CHANGELOG.md and docs/*.md names an existing file inside
  the repository, and its ``#anchor``, when it has one, a heading of that file (GitHub's
  anchor rules);
- every citation ``docs/<page>.md, '<heading>'`` anywhere in the repository names a page and
  a heading that exist (code and manifests cite the docs that way);
- the docs never cite the team's old design notes;
- docs/operations.md names every setting a MedVoice process reads, and every
  ``MEDVOICE_<GROUP>__<NAME>`` the docs name is one that a process reads.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from medvoice_common.env_check import DELIMITER, known_names

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
SKIP_DIRS = {".git", ".venv", "node_modules", "build", "target", "__pycache__", ".dev"}
CITING_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".txt", ".json", ".lua"}
CITING_NAMES = {"Dockerfile", "Makefile"}

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```", re.DOTALL)
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)  # notes to editors document nothing
CITATION = re.compile(r"docs/([\w.-]+\.md),\s*'([^']+)'")
DOC_PATH = re.compile(r"\bdocs/([\w.-]+\.md)\b")
SETTING = re.compile(r"\bMEDVOICE_[A-Z0-9]+(?:__[A-Z0-9]+(?:_[A-Z0-9]+)*)+\b")
# A following "`__NAME`" in the same line abbreviates the last full name's final segment.
NAME_OR_TAIL = re.compile(r"`(MEDVOICE_[A-Z0-9_]+|__[A-Z0-9_]+)`")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def headings(page: Path) -> list[str]:
    """The page's headings (outside code blocks), as written."""
    text = CODE.sub("", page.read_text())
    return [m.group(2).strip() for m in re.finditer(r"^(#{1,6})\s+(.+)$", text, re.MULTILINE)]


def anchors(page: Path) -> set[str]:
    """Every anchor GitHub gives the page's headings, duplicates numbered."""
    seen: dict[str, int] = {}
    result = set()
    for heading in headings(page):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def links(page: Path) -> Iterator[str]:
    """Relative link targets of ``page`` (code blocks and absolute URLs left out)."""
    for match in LINK.finditer(CODE.sub("", page.read_text())):
        target = match.group(1)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            yield target


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.is_relative_to(ROOT):  # a clone has nothing outside the repository
            broken.append(f"{target}: outside the repository")
        elif not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def citing_files() -> Iterator[Path]:
    """Text files of the repository that may cite the docs."""
    for directory, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        for name in files:
            path = Path(directory, name)
            if path.suffix in CITING_SUFFIXES or name in CITING_NAMES:
                yield path


def test_citations_of_the_docs_resolve() -> None:
    broken = []
    for path in citing_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        where = path.relative_to(ROOT)
        for page in DOC_PATH.findall(text):
            if not (ROOT / "docs" / page).is_file():
                broken.append(f"{where}: docs/{page} does not exist")
        for page, heading in CITATION.findall(text):
            doc = ROOT / "docs" / page
            if doc.is_file() and heading not in headings(doc):
                broken.append(f"{where}: docs/{page} has no heading '{heading}'")
    assert not broken, "\n".join(broken)


def test_docs_never_cite_the_old_design_notes() -> None:
    for page in DOCS:
        text = page.read_text()
        assert "DESIGN" not in text, page


def documented_settings(text: str) -> set[str]:
    """Setting names in ``text``, with "`X__A`, `__B`" read as X__A and X__B."""
    text = COMMENT.sub("", text)
    names = set(SETTING.findall(text))
    for line in text.splitlines():
        last = None
        for token in NAME_OR_TAIL.findall(line):
            if token.startswith("MEDVOICE_"):
                names.add(token)
                last = token
            elif last is not None and DELIMITER in last:
                names.add(last.rsplit(DELIMITER, 1)[0] + token)
    return names


def leaf_settings() -> set[str]:
    """Every setting name a process reads, groups (which take JSON) left out."""
    known = known_names()
    groups = {n for n in known if any(other.startswith(n + DELIMITER) for other in known)}
    return {n for n in known - groups if DELIMITER in n or n == "MEDVOICE_LOG_LEVEL"}


def test_operations_documents_every_setting() -> None:
    documented = documented_settings((ROOT / "docs" / "operations.md").read_text())
    missing = sorted(leaf_settings() - documented)
    assert not missing, f"settings missing from docs/operations.md: {missing}"


def test_docs_name_only_real_settings() -> None:
    known = known_names()
    unknown = {
        f"{page.relative_to(ROOT)}: {name}"
        for page in DOCS
        if page.name != "CHANGELOG.md"  # it lists the names that were renamed
        for name in SETTING.findall(COMMENT.sub("", page.read_text()))
        if name not in known
    }
    assert not unknown, sorted(unknown)
