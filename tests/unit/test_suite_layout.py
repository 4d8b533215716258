"""The suite itself: test files have unique names, or pytest stops at collection."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_file_basenames_are_unique() -> None:
    """Test directories are not packages: two ``test_x.py`` clash (twice this session)."""
    names = Counter(path.name for path in TESTS.rglob("test_*.py") if "target" not in path.parts)
    assert [name for name, count in names.items() if count > 1] == []
