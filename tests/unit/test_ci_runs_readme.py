"""CI runs what a new user runs: `.ci/run` only calls commands the README gives.

If CI needed a step the README's commands do not do (an apt package, a venv, jars), CI would be
green while a new user's `make test` fails. So `.ci/run` may only set shell options, change
to the repository root, and call `make` targets that the README names.
"""

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[list[str]]:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [
        shlex.split(line) for line in lines if line.strip() and not line.lstrip().startswith("#")
    ]


def test_ci_only_calls_the_readme_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"\bmake ([a-z][a-z-]*)", readme))
    targets = []
    for argv in _commands():
        if argv[:1] == ["set"] or argv[:1] == ["cd"]:
            continue
        assert argv[0] == "make", f".ci/run runs {argv!r}: not a README command"
        assert len(argv) == 2, f".ci/run passes extra arguments to make: {argv!r}"
        assert argv[1] in named, f"`make {argv[1]}` is not in the README"
        targets.append(argv[1])
    assert "test" in targets, ".ci/run must run the suite with `make test`"


def test_make_test_sets_up_the_machine_itself() -> None:
    """`make test` depends on the system packages, the venv and the Kafka jars."""
    makefile = (ROOT / "Makefile").read_text()
    test_rule = re.search(r"^test: (.*?)##", makefile, re.MULTILINE)
    assert test_rule is not None
    prerequisites = test_rule.group(1).split()
    assert "system-deps" in prerequisites
    assert "$(VENV)/.installed" in prerequisites
    assert "kafka-jars" in prerequisites
    assert "tools/ensure_system_deps.sh test" in makefile
