"""bench.soak without the soak test itself: its parsing, its per-run limit, its report."""

import sys
from pathlib import Path

import pytest

from bench import soak
from bench.common import wait_until

CRASH_TEST = Path(__file__).resolve().parents[1] / "reliability" / "test_crash.py"
LINE = (
    "submitted=200 completed=200 lost=0 duplicate_finals=2 done_at_kill=40 "
    "in_flight_at_kill=61 guard_rereads=3 takeover_s=9.3"
)


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie not yet reaped counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def test_the_crash_test_prints_every_field_the_series_reads() -> None:
    """The result line's names, as the soak test prints them."""
    source = CRASH_TEST.read_text()
    assert soak.TEST.split("::")[1] in source
    for name in (*soak.COUNTS, "takeover_s"):
        assert f"{name}=" in source


def test_parse_reads_the_last_result_line() -> None:
    fields = soak.parse(f"noise\n{LINE}\n.\n1 passed in 27.19s\n")
    assert fields == {
        "submitted": 200, "completed": 200, "lost": 0, "duplicate_finals": 2,
        "done_at_kill": 40, "in_flight_at_kill": 61, "guard_rereads": 3, "takeover_s": 9.3,
    }  # fmt: skip
    assert soak.parse("1 failed in 400.0s\n") is None


def test_every_run_is_made_and_a_run_past_its_limit_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A passing run, then one that hangs with a child of its own: killed, group and all."""
    marker = tmp_path / "child.pid"
    script = tmp_path / "fake.py"
    script.write_text(
        "import os, subprocess, sys, time\n"
        f"if os.path.exists({str(tmp_path / 'first')!r}):\n"
        "    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"    open({str(marker)!r}, 'w').write(str(child.pid))\n"
        "    time.sleep(300)\n"
        f"open({str(tmp_path / 'first')!r}, 'w').close()\n"
        f"print({LINE!r})\n"
    )
    monkeypatch.setattr(soak, "command", lambda: [sys.executable, str(script)])
    monkeypatch.setattr(soak, "STOP_GRACE_S", 5.0)
    data = soak.run(tmp_path / "runs", 2, timeout_s=5.0)
    first, second = data["runs"]
    assert first["passed"] and first["fields"]["in_flight_at_kill"] == 61
    assert not second["passed"] and second["timed_out"] and second["fields"] is None
    assert (data["total"], data["passed"], data["in_a_row"], data["lost"]) == (2, 1, 1, 0)
    child = int(marker.read_text())
    wait_until(lambda: gone(child), 10, "the hung run's child to be killed")
    section = "\n".join(soak.section(data))
    assert "| 1 | passed |" in section and "| 2 | **timed out** |" in section
