"""The SIGKILL series: the soak test (two workers, 200 tasks, 32 in flight per worker, one
worker SIGKILLed mid-run) run N times, each in its own pytest process, every run reported.

``python -m bench.soak --runs 1`` runs it on its own and prints the data as JSON.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEST = (
    "tests/integration/reliability/test_crash.py"
    "::test_sigkill_with_32_tasks_in_flight_per_worker_loses_nothing"
)
# The test's own pytest-timeout is 900 s; past that pytest itself has hung.
RUN_TIMEOUT_S = 960.0
STOP_GRACE_S = 60.0  # a timed-out pytest's teardown after SIGINT, before SIGKILL to its group
COUNTS = (
    "submitted",
    "completed",
    "lost",
    "duplicate_finals",
    "done_at_kill",
    "in_flight_at_kill",
    "guard_rereads",
)
LINE = re.compile(
    r"submitted=(?P<submitted>\d+) completed=(?P<completed>\d+) lost=(?P<lost>\d+) "
    r"duplicate_finals=(?P<duplicate_finals>\d+) done_at_kill=(?P<done_at_kill>\d+) "
    r"in_flight_at_kill=(?P<in_flight_at_kill>\d+) guard_rereads=(?P<guard_rereads>\d+) "
    r"takeover_s=(?P<takeover_s>[0-9.]+)"
)
# pytest's verdict: "FAILED <test> - <why>" lines and the final count ("1 failed in 412.3s").
SUMMARY = re.compile(r"^(?:FAILED|ERROR) .*$|^[= ]*\d+ (?:passed|failed|error).*$", re.MULTILINE)


def command() -> list[str]:
    """The pytest command of one run (``-s``: the test's result line reaches stdout)."""
    flags = ["-s", "-q", "-p", "no:cacheprovider"]
    return [sys.executable, "-m", "pytest", *flags, TEST]


def parse(output: str) -> dict[str, Any] | None:
    """The fields of the test's result line (the last one in ``output``), if printed."""
    found = list(LINE.finditer(output))
    if not found:
        return None
    fields: dict[str, Any] = {k: int(found[-1][k]) for k in COUNTS}
    fields["takeover_s"] = float(found[-1]["takeover_s"])
    return fields


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to the process group ``pgid``; False when no process is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def run_once(log_path: Path, timeout_s: float = RUN_TIMEOUT_S) -> dict[str, Any]:
    """One run in its own session (process group), output to ``log_path``.

    On timeout pytest gets SIGINT (it prints where it was and runs its fixtures' teardown),
    then the whole group (pytest, its workers, broker, S3 and Riva test servers) SIGKILL;
    after any run, whatever is still in the group is killed (``left_behind`` when the run
    had not timed out).
    """
    started = time.monotonic()
    timed_out = False
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command(),
            cwd=ROOT,
            env=dict(os.environ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pgid = proc.pid
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        finally:  # also on KeyboardInterrupt: the run's session gets no terminal signal
            left_behind = _signal_group(pgid, signal.SIGKILL)
            proc.wait()
    wall = time.monotonic() - started
    output = log_path.read_text(errors="replace")
    fields = parse(output)
    passed = proc.returncode == 0 and not timed_out and fields is not None
    summary = [m.group(0).strip("= ") for m in SUMMARY.finditer(output)]
    return {
        "passed": passed,
        "returncode": proc.returncode,
        "timed_out": timed_out,
        "left_behind": left_behind and not timed_out,
        "wall_s": wall,
        "fields": fields,
        "summary": summary[-3:],
        "log": str(log_path),
    }


def run(out_dir: Path, runs: int, timeout_s: float = RUN_TIMEOUT_S) -> dict[str, Any]:
    """``runs`` runs, all of them whatever fails; per-run data and totals."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for i in range(1, runs + 1):
        r = run_once(out_dir / f"run-{i:02d}.log", timeout_s)
        results.append(r)
        f = r["fields"] or {}
        state = "passed" if r["passed"] else ("timed out" if r["timed_out"] else "FAILED")
        print(
            f"  soak run {i}/{runs}: {state} in {r['wall_s']:.0f} s "
            f"(lost {f.get('lost', '?')}, in flight at kill {f.get('in_flight_at_kill', '?')}, "
            f"guard re-reads {f.get('guard_rereads', '?')})",
            flush=True,
        )
    in_a_row = 0
    for r in results:
        if not r["passed"]:
            break
        in_a_row += 1
    return {
        "test": TEST,
        "command": " ".join(["python", *command()[1:]]),
        "timeout_s": timeout_s,
        "runs": results,
        "total": runs,
        "passed": sum(r["passed"] for r in results),
        "in_a_row": in_a_row,
        "lost": sum(r["fields"]["lost"] for r in results if r["fields"]),
        "timed_out": sum(r["timed_out"] for r in results),
    }


def _cell(fields: dict[str, Any] | None, key: str, fmt: str = "{}") -> str:
    return fmt.format(fields[key]) if fields else "-"


def section(soak: dict[str, Any]) -> list[str]:
    """The report's section on the series."""
    out = [
        "## SIGKILL series, 32 tasks in flight per worker (issue item 1)",
        "",
        f"`{soak['command']}`: {soak['total']} runs, each a fresh pytest process (its own "
        "broker, S3 endpoint, Riva-protocol batching server and two workers, one of them "
        "SIGKILLed mid-run), all made whatever fails, each limited to "
        f"{soak['timeout_s']:.0f} s. Figures are the test's own result line; "
        "guard re-reads: the offset guard's warning counted in both workers' logs. "
        f"Passed {soak['passed']} of {soak['total']}, {soak['in_a_row']} in a row from the "
        f"first; {soak['lost']} tasks lost in the runs that reported.",
        "",
        "| run | result | wall s | lost | duplicate finals | done at kill | in flight at kill "
        "| guard re-reads | takeover s |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for i, r in enumerate(soak["runs"], 1):
        f = r["fields"]
        if r["passed"]:
            result = "passed"
        elif r["timed_out"]:
            result = "**timed out**"
        elif r["returncode"] == 0:
            result = "**failed** (no result line)"
        else:
            result = f"**failed** (exit {r['returncode']})"
        out.append(
            f"| {i} | {result} | {r['wall_s']:.0f} | {_cell(f, 'lost')} | "
            f"{_cell(f, 'duplicate_finals')} | {_cell(f, 'done_at_kill')} | "
            f"{_cell(f, 'in_flight_at_kill')} | {_cell(f, 'guard_rereads')} | "
            f"{_cell(f, 'takeover_s', '{:.1f}')} |"
        )
        if not r["passed"] or r["left_behind"]:
            why = "; ".join(r["summary"]) or "no pytest summary"
            left = " Processes were left in its group and killed." if r["left_behind"] else ""
            log = f"raw/soak/{Path(r['log']).name}"
            notes.append(f"- Run {i}: {why} (log `{log}`).{left}")
    return [*out, "", *notes, *([""] if notes else [])]


def main() -> int:
    """Run the series on its own; print its data as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("/tmp/medvoice-soak"))
    parser.add_argument("--timeout-s", type=float, default=RUN_TIMEOUT_S)
    args = parser.parse_args()
    data = run(args.out, args.runs, args.timeout_s)
    print(json.dumps(data, indent=1))
    return 0 if data["passed"] == data["total"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
