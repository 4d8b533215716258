"""The worker's status table at scale: its changelog filled with finished tasks (issue 12.5).

The table's changelog topic is filled directly with the entries a worker writes for a
finished task (the 14-byte entries of :mod:`processors.status_table`; at the first level
also Faust's JSON entries of before, for the bytes per entry). Per level (cumulative):

- **cold**: a worker on ``rocksdb://`` with an empty data directory (a new pod, or a lost
  volume) rebuilds its store from the whole changelog;
- **warm**: the same worker restarted on its directory (a pod restart with its volume)
  reads only what the changelog holds past the offsets its store kept;
- **memory**: a worker on ``memory://`` (the old default) rebuilds from the changelog at
  every start, and holds every entry in its heap.

Measured from the worker's own log: process start to Faust's "Recovery complete" (the
agents take no record before it) and to "Worker ready"; RSS then (and the peak); the store
on disk; and, on the warm worker, one retention sweep over all entries (1% of them past
the retention: they are deleted with changelog tombstones).
"""

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.serializers import codecs

from bench.common import Services, mb, proc_status
from processors.status_table import ENTRY_CODEC, STATUS_TABLE
from tests.fixtures.kafka_broker import free_port
from tests.fixtures.processes import ManagedProcess, python_module
from tests.fixtures.stack import StackConfig
from tests.fixtures.topic_reader import create_topic

PARTITIONS = 6
RECOVERED = "Recovery complete"
READY = "Worker ready"
SWEPT = "status table entries past their retention deleted"
TIMEOUT_S = 1800.0
EXPIRED_EVERY = 100  # one entry in this many is past the retention
TASK_BASE = 0x7374_6174_6566_756C << 64  # task n's id: this plus n
JSON = codecs.get_codec("json")


def key(n: int) -> bytes:
    """The n-th task's table key as Faust stores it (JSON text of the task id)."""
    return JSON.dumps(str(uuid.UUID(int=TASK_BASE + n)))


def entry(n: int, now: float, *, json_format: bool = False) -> bytes:
    """The n-th finished task's entry; one in EXPIRED_EVERY last written 400 days ago."""
    value = {"status": "completed", "attempt": 0, "replay": 0, "transcript_published": True}
    if json_format:
        return JSON.dumps(value)
    at = now - 400 * 86_400 if n % EXPIRED_EVERY == 0 else now
    return ENTRY_CODEC.dumps({**value, "at": at})


async def fill(
    bootstrap: str, topic: str, start: int, stop: int, *, json_format: bool = False
) -> tuple[float, int]:
    """Publish entries ``start``..``stop``; returns the seconds and the key+value bytes."""
    began, size, now = time.monotonic(), 0, time.time()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        pending = []
        for n in range(start, stop):
            k, v = key(n), entry(n, now, json_format=json_format)
            size += len(k) + len(v)
            pending.append(await producer.send(topic, v, key=k, partition=n % PARTITIONS))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - began, size


def _log_time(proc: ManagedProcess, text: str) -> float | None:
    """Unix time of the first log line containing ``text`` (its JSON ``ts``), or None."""
    for line in proc.log_text().splitlines():
        if text in line:
            try:
                return datetime.fromisoformat(json.loads(line)["ts"]).timestamp()
            except (ValueError, KeyError):
                return time.time()
    return None


def _wait_log(proc: ManagedProcess, text: str, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        at = _log_time(proc, text)
        if at is not None:
            return at
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        time.sleep(0.1)  # polling a log file: nothing to wait on
    raise RuntimeError(f"{proc.name}: no {text!r} within {timeout_s} s:\n{proc.tail()}")


def others() -> list[str]:
    """The busiest processes on the machine now (``ps``: CPU share over each one's life)."""
    out = subprocess.run(
        ["ps", "-eo", "pcpu=,args=", "--sort=-pcpu"], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for line in out.splitlines()[:8]:
        cpu, _, args = line.strip().partition(" ")
        rows.append(f"{cpu}% {args.strip()[:100]}")
    return rows


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _worker(cfg: StackConfig, name: str, store: str, state: Path, **env: str) -> dict[str, Any]:
    """Start a worker, wait for its table's recovery; returns figures and the process."""
    began = time.time()
    proc = ManagedProcess(
        name,
        python_module("processors"),
        cfg.env(
            MEDVOICE_WORKER__WEB_PORT=str(free_port()),
            MEDVOICE_WORKER__STORE=store,
            MEDVOICE_WORKER__DATA_DIR=str(state),
            MEDVOICE_KAFKA__PARTITIONS=str(PARTITIONS),
            **env,
        ),
        cfg.log_dir,
    )
    recovered = _wait_log(proc, RECOVERED, TIMEOUT_S)
    ready = _wait_log(proc, READY, 120)
    mem = proc_status(proc.pid)
    return {
        "proc": proc,
        "recovered_s": recovered - began,
        "ready_s": ready - began,
        "rss": mem["VmRSS"],
        "hwm": mem["VmHWM"],
    }


def _fresh(path: Path) -> Path:
    """``path`` emptied: a store left by an earlier bench run would make a "cold" start warm
    (Faust then refuses it: its persisted offsets are past the new changelog's end)."""
    shutil.rmtree(path, ignore_errors=True)
    return path


def _measure(cfg: StackConfig, level: int, raw: Path, sweep_s: float) -> dict[str, Any]:
    state = _fresh(raw / f"state-{level}")
    row: dict[str, Any] = {"tasks": level}
    cold = _worker(cfg, f"worker-cold-{level}", "rocksdb://", state)
    cold.pop("proc").terminate()
    row["cold"] = cold
    row["disk_bytes"] = _disk_bytes(state)
    warm = _worker(
        cfg,
        f"worker-warm-{level}",
        "rocksdb://",
        state,
        MEDVOICE_RETENTION__SWEEP_INTERVAL_S=str(sweep_s),
    )
    proc: ManagedProcess = warm.pop("proc")
    try:
        _wait_log(proc, SWEPT, TIMEOUT_S)
        line = next(ln for ln in proc.log_text().splitlines() if SWEPT in ln)
        swept = json.loads(line)
        warm["sweep"] = {"deleted": swept["count"], "duration_s": swept["duration_s"]}
    finally:
        proc.terminate()
    row["warm"] = warm
    memory = _worker(cfg, f"worker-memory-{level}", "memory://", _fresh(raw / f"mem-{level}"))
    memory.pop("proc").terminate()
    row["memory"] = memory
    return row


def run(services: Services, raw: Path, levels: list[int], sweep_s: float = 20.0) -> dict[str, Any]:
    """Fill the table's changelog level by level and measure worker starts at each level."""
    raw.mkdir(parents=True, exist_ok=True)
    started = (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0])
    sizes: dict[str, Any] = {}
    # The worker's own start with an empty table: what every start below also takes.
    empty_cfg = services.stack(partitions=PARTITIONS)
    empty = _worker(empty_cfg, "worker-empty", "rocksdb://", _fresh(raw / "e"))
    empty.pop("proc").terminate()
    print(f"   worker table empty: {json.dumps(empty)}", flush=True)
    # Bytes per entry before (Faust's JSON) and after, in the changelog and on disk.
    for fmt in ("json", "binary"):
        cfg = services.stack(partitions=PARTITIONS)
        topic = cfg.topic(f"medvoice-worker-{STATUS_TABLE}-changelog")
        asyncio.run(create_topic(cfg.bootstrap, topic, PARTITIONS, cleanup_policy="compact"))
        count = min(levels)
        _, size = asyncio.run(fill(cfg.bootstrap, topic, 0, count, json_format=fmt == "json"))
        state = _fresh(raw / f"format-{fmt}")
        w = _worker(cfg, f"worker-format-{fmt}", "rocksdb://", state)
        w.pop("proc").terminate()
        sizes[fmt] = {
            "tasks": count,
            "record_bytes": size / count,
            "value_bytes": len(entry(1, time.time(), json_format=fmt == "json")),
            "disk_bytes": _disk_bytes(state),
            "recovered_s": w["recovered_s"],
        }
        print(f"   worker table format {fmt}: {json.dumps(sizes[fmt])}", flush=True)
    cfg = services.stack(partitions=PARTITIONS)
    topic = cfg.topic(f"medvoice-worker-{STATUS_TABLE}-changelog")
    asyncio.run(create_topic(cfg.bootstrap, topic, PARTITIONS, cleanup_policy="compact"))
    rows: list[dict[str, Any]] = []
    filled, fill_s = 0, 0.0
    for level in sorted(levels):
        print(f"   worker table at {level} tasks: filling", flush=True)
        seconds, _ = asyncio.run(fill(cfg.bootstrap, topic, filled, level))
        fill_s += seconds
        filled = level
        print(f"   worker table at {level} tasks: measuring", flush=True)
        seen = others()
        rows.append(_measure(cfg, level, raw, sweep_s))
        rows[-1]["loadavg"] = os.getloadavg()[0]
        rows[-1]["others"] = seen + others()
        print(f"   {json.dumps(rows[-1], default=str)}", flush=True)
    return {
        "levels": rows,
        "empty": empty,
        "formats": sizes,
        "fill_s": fill_s,
        "partitions": PARTITIONS,
        "expired_every": EXPIRED_EVERY,
        "started": started[0],
        "loadavg_start": started[1],
        "loadavg_end": os.getloadavg()[0],
    }


def section(results: dict[str, Any]) -> list[str]:
    """The report's section (markdown lines)."""
    rows = results["levels"]
    fm = results["formats"]
    loads = ", ".join(f"{r.get('loadavg', 0):.1f}" for r in rows)
    out = [
        "## Worker status table at scale (issue 12.4 and 12.5, worker)",
        "",
        f"The worker table's changelog ({results['partitions']} partitions) filled with the "
        "entries of finished tasks, level by level. Per level: a worker on `rocksdb://` with "
        "an empty data directory (cold: it rebuilds its store from the changelog), the same "
        "worker restarted on its directory (warm: a pod restart with its volume), and a "
        "worker on `memory://` (rebuilds at every start). Times are from process start to "
        "Faust's `Recovery complete` (no record is taken before it) and to `Worker ready`; "
        "both include the worker's own start (imports, whisper model load, Kafka join), "
        "which an empty table also takes. RSS when ready (peak in brackets). One entry in "
        f"{results['expired_every']} is past the retention: the warm worker's first "
        "retention sweep reads every entry and deletes those (changelog tombstones).",
        "",
        f"Run {results.get('started', '?')}; load average (1 min) "
        f"{results.get('loadavg_start', 0):.1f} at the start, "
        f"{results.get('loadavg_end', 0):.1f} at the end (after each level: {loads}). The "
        "machine has 2 cores shared with the Kafka broker's JVM, moto and other engineers' "
        "test runs at the same time.",
        "",
        "Also running (the busiest processes, sampled before and after each level):",
        "",
        *sorted({f"- `{o.split(' ', 1)[1]}`" for r in rows for o in r.get("others", [])}),
        "",
        f"Empty table (the worker's own start): recovered {results['empty']['recovered_s']:.1f} s, "
        f"ready {results['empty']['ready_s']:.1f} s, RSS {mb(results['empty']['rss']):.0f} MB.",
        "",
        "| tasks | cold: recovered / ready | cold RSS | warm: recovered / ready | warm RSS "
        "| memory://: recovered / ready | memory:// RSS | store on disk | sweep (deleted) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        c, w, m = r["cold"], r["warm"], r["memory"]
        out.append(
            f"| {r['tasks']:,} | {c['recovered_s']:.1f} / {c['ready_s']:.1f} s | "
            f"{mb(c['rss']):.0f} MB ({mb(c['hwm']):.0f}) | "
            f"{w['recovered_s']:.1f} / {w['ready_s']:.1f} s | "
            f"{mb(w['rss']):.0f} MB ({mb(w['hwm']):.0f}) | "
            f"{m['recovered_s']:.1f} / {m['ready_s']:.1f} s | "
            f"{mb(m['rss']):.0f} MB ({mb(m['hwm']):.0f}) | {mb(r['disk_bytes']):.0f} MB | "
            f"{w['sweep']['duration_s']:.1f} s ({w['sweep']['deleted']:,}) |"
        )
    top = max(rows, key=lambda r: r["tasks"])
    empty = results["empty"]
    out += [
        "",
        f"At {top['tasks']:,} finished tasks a worker restarted on its volume is taking work "
        f"{top['warm']['recovered_s']:.1f} s after it starts ({empty['recovered_s']:.1f} s "
        f"with an empty table) at {mb(top['warm']['rss']):.0f} MB; the same start without "
        f"the volume (or on `memory://`, at every start) reads the whole changelog first: "
        f"{top['cold']['recovered_s']:.0f} s ({top['memory']['recovered_s']:.0f} s on "
        f"`memory://`, holding {mb(top['memory']['rss']):.0f} MB). A retention sweep over "
        f"all entries took {top['warm']['sweep']['duration_s']:.1f} s of the worker's event "
        "loop, in slices (every `MEDVOICE_RETENTION__SWEEP_INTERVAL_S`, 600 s by default).",
    ]
    j, b = fm["json"], fm["binary"]
    out += [
        "",
        f"Bytes per entry, {j['tasks']:,} finished tasks (key: the task id as JSON text, "
        "38 bytes, unchanged):",
        "",
        "| entry format | value | key + value in the changelog | store on disk | cold recovery |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| before: Faust's JSON dict | {j['value_bytes']} B | {j['record_bytes']:.0f} B | "
        f"{mb(j['disk_bytes']):.1f} MB | {j['recovered_s']:.1f} s |",
        f"| after: 14-byte entry | {b['value_bytes']} B | {b['record_bytes']:.0f} B | "
        f"{mb(b['disk_bytes']):.1f} MB | {b['recovered_s']:.1f} s |",
        "",
    ]
    return out


def main() -> int:
    """``python -m bench.worker_state [levels...]``: this scenario alone, raw JSON and section."""
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("levels", nargs="*", type=int, default=[100_000, 500_000])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "worker-state")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="medvoice-bench-"))
    services = Services(work).start()
    try:
        results = run(services, args.out / "raw", args.levels)
    finally:
        services.stop()
        shutil.rmtree(work, ignore_errors=True)
    (args.out / "worker_state.json").write_text(json.dumps(results, indent=1, default=str))
    (args.out / "worker_state.md").write_text("\n".join(section(results)))
    print("\n".join(section(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
