"""Shared pieces of the benchmarks: the services they start, statistics, process probes."""

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.kafka_broker import KafkaBroker, free_port
from tests.fixtures.processes import ManagedProcess, start_s3_server
from tests.fixtures.stack import StackConfig

CLK_TCK = os.sysconf("SC_CLK_TCK")


def median(xs: Sequence[float]) -> float:
    """The median, 0 for no data."""
    return float(statistics.median(xs)) if xs else 0.0


def mb(n: float) -> float:
    """Bytes as MiB (what the reports print as MB)."""
    return n / 1024 / 1024


def percentile(xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile ``p`` (0-100) of ``xs``; 0 for no data."""
    if not xs:
        return 0.0
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))
    return float(s[k])


def spread(xs: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {"median": median(xs), "min": min(xs, default=0.0), "max": max(xs, default=0.0)}


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of ``pid`` in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used by ``pid`` (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def machine_busy_seconds() -> float:
    """CPU seconds all of this machine's cores have spent busy (not idle, not waiting on I/O)
    since boot, from ``/proc/stat``: every process's share, other users' included."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / CLK_TCK  # user .. steal; guest is in user


def machine() -> dict[str, Any]:
    """What this machine is, for the report."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": java.splitlines()[0] if java else "?",
        "wrk": wrk.splitlines()[0] if wrk else "?",
        "loadavg_start": os.getloadavg(),
    }


@dataclass
class Services:
    """The broker and S3 endpoint the benchmarks run against (started here unless given)."""

    work_dir: Path
    bootstrap: str = ""
    s3_url: str = ""
    kafka_version: str = "?"
    _broker: KafkaBroker | None = None
    _s3: ManagedProcess | None = None
    started: list[ManagedProcess] = field(default_factory=list)

    def start(self) -> "Services":
        """Start what was not given."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not self.bootstrap:
            self._broker = KafkaBroker(self.work_dir / "kafka")
            self._broker.start()
            self.bootstrap = self._broker.bootstrap
            self.kafka_version = self._broker.version
        if not self.s3_url:
            port = free_port()
            self._s3 = start_s3_server(port, self.work_dir)
            self.s3_url = f"http://127.0.0.1:{port}"
        return self

    def stack(self, **kw: Any) -> StackConfig:
        """A fresh isolated deployment on these services."""
        log_dir = self.work_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        return StackConfig(self.bootstrap, self.s3_url, log_dir, **kw)

    def stop(self) -> None:
        """Stop everything started here."""
        for proc in reversed(self.started):
            proc.terminate(timeout_s=20)
        if self._s3 is not None:
            self._s3.terminate()
        if self._broker is not None:
            self._broker.stop()


def wait_until(cond: Any, timeout_s: float, what: str, poll_s: float = 0.2) -> None:
    """Poll ``cond()`` until true or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(poll_s)
    raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}")


def tool(name: str) -> str | None:
    """``name`` on PATH or next to this interpreter (the venv's bin, not activated by make)."""
    import shutil
    import sys

    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def py_spy(pid: int, out: Path, during: Callable[[], object], *, rate: int, threads: bool) -> str:
    """Record ``pid`` with py-spy (raw stacks to ``out``) while ``during()`` runs.

    Returns "" when ``out`` was written, else why not (py-spy missing or its error).
    """
    import signal

    spy_bin = tool("py-spy")
    if not spy_bin:
        return "py-spy not installed"
    argv = [spy_bin, "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "-o", str(out)]
    argv += ["--nonblocking", *(["--threads"] if threads else [])]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches; it says nothing when it has
    try:
        during()
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output and exits
        try:
            _, err = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            err = b""
    return "" if out.exists() else (err.decode(errors="replace")[-500:] or "no output")
