"""tools/ensure_system_deps.sh: a user without root is told which packages are missing."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "ensure_system_deps.sh"
# What the script itself runs; everything else is left off PATH, so all tools look missing.
SHELL_TOOLS = ("bash", "id", "sort", "sed", "printf", "env", "cat")


@pytest.fixture
def bare_path() -> Iterator[str]:
    """A PATH with only the shell tools (under /tmp: pytest's tmp_path is root-only)."""
    bin_dir = Path(tempfile.mkdtemp(prefix="medvoice-bare-path-"))
    for tool in SHELL_TOOLS:
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    bin_dir.chmod(0o755)
    yield str(bin_dir)
    shutil.rmtree(bin_dir)


def _run_unprivileged(path: str, purpose: str) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(SCRIPT), purpose]
    if os.geteuid() == 0:  # drop root, as a developer's shell would be
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("setpriv (util-linux) is needed to run this test as root")
        argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    return subprocess.run(
        argv,
        env={"PATH": path, "HOME": "/"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_test_purpose_names_every_missing_package(bare_path: str) -> None:
    result = _run_unprivileged(bare_path, "test")
    assert result.returncode == 1
    for package in ("default-jre-headless", "maven", "espeak-ng", "prometheus", "kcat"):
        assert package in result.stderr
    assert "apt-get install" in result.stderr


def test_dev_purpose_warns_and_goes_on_without_a_jvm(bare_path: str) -> None:
    result = _run_unprivileged(bare_path, "dev")
    assert result.returncode == 0
    assert "embedded" in result.stderr
    assert "default-jre-headless" in result.stderr


def test_nothing_missing_is_silent() -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), "test"], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
