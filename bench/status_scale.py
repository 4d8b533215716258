"""The API at scale: ``task.status`` filled with up to 2,000,000 finished tasks.

For each level (cumulative: the topic grows from one level to the next) a fresh API
replica starts on an empty state directory (cold: it rebuilds its store from the topic),
then ``GET /tasks/{id}`` and ``GET /users/{id}/tasks`` are driven with wrk (random task ids
and users, 32 connections), then the replica restarts on its directory (warm). Measured:
time from process start to ``/readyz`` 200, RSS when ready and after the load, latency
percentiles, the store's size on disk.
"""

import asyncio
import json
import os
import random
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.common import Services, mb, proc_status
from tests.fixtures.kafka_broker import free_port
from tests.fixtures.processes import ManagedProcess, python_module
from tests.fixtures.stack import StackConfig
from tests.fixtures.topic_reader import create_topic

LUA = Path(__file__).with_name("read.lua")
PARTITIONS = 6
USERS = 20_000  # 100 tasks each at 2M
SAMPLE_PATHS = 20_000  # random task ids / users each wrk run picks from
READY_TIMEOUT_S = 1800.0
TARGETS = {"rss_mb": 250, "warm_s": 10, "cold_s": 300, "get_p99_ms": 20}
TASK_BASE = 0x6D65_6476_6F69_6365 << 64  # task n's id: this plus n (distinct, reproducible)
# Finished tasks as ``failed`` records: GET then answers from the view alone (a
# ``completed`` task's GET also reads its transcript from S3, which would measure moto).
TEMPLATE = (
    '{{"event_id":"{event}","schema_version":1,"occurred_at":"2026-11-{day:02d}T10:{m:02d}:'
    '{s:02d}Z","task_id":"{task}","user_id":"user{user}","event_type":"TaskStatusChanged",'
    '"file_id":"f{n}","status":"failed","submitted_at":"2026-11-{day:02d}T10:00:{s:02d}Z",'
    '"attempt":2,"replay":0,"error":{{"code":"audio_unreadable","message":"The recording '
    'could not be decoded as audio."}},"transcript":null}}'
)


def task_id(n: int) -> str:
    """The id of the n-th benchmark task."""
    return str(uuid.UUID(int=TASK_BASE + n))


def record(n: int) -> bytes:
    """The n-th task's final record (as a worker writes it, about 450 bytes)."""
    return TEMPLATE.format(
        event=uuid.uuid4(),
        task=task_id(n),
        user=n % USERS,
        n=n,
        day=1 + n % 28,
        m=n % 60,
        s=(n // 60) % 60,
    ).encode()


async def fill(bootstrap: str, topic: str, start: int, stop: int) -> float:
    """Publish tasks ``start``..``stop`` to ``topic``; returns the seconds it took."""
    began = time.monotonic()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        pending = []
        for n in range(start, stop):
            pending.append(await producer.send(topic, record(n), key=task_id(n).encode()))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - began


def _start_api(cfg: StackConfig, state: Path, name: str) -> tuple[ManagedProcess, str, float]:
    port = free_port()
    began = time.monotonic()
    proc = ManagedProcess(
        name,
        python_module("producer_api"),
        cfg.env(
            MEDVOICE_API__PORT=str(port),
            MEDVOICE_API__STATE_DIR=str(state),
            MEDVOICE_KAFKA__PARTITIONS=str(PARTITIONS),
        ),
        cfg.log_dir,
    )
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(f"{url}/readyz", timeout_s=READY_TIMEOUT_S)
    return proc, url, time.monotonic() - began


def _wrk(url: str, paths: list[str], token: str, conns: int, seconds: float, raw: Path) -> Any:
    listing = raw / "paths.txt"
    listing.write_text("\n".join(paths) + "\n")
    out = raw / "wrk-read.json"
    env = {**os.environ, "BENCH_PATHS": str(listing), "BENCH_TOKEN": token, "BENCH_OUT": str(out)}
    cmd = [
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]
    subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=seconds + 60)
    data: dict[str, Any] = json.loads(out.read_text())
    data["rps"] = data["ok"] / (data["duration_us"] / 1e6)
    return data


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _measure(cfg: StackConfig, level: int, raw: Path, seconds: float, conns: int) -> Any:
    state = raw / f"state-{level}"
    api, url, cold_s = _start_api(cfg, state, f"api-cold-{level}")
    row: dict[str, Any] = {"tasks": level, "cold_s": cold_s}
    try:
        row["rss_ready"] = proc_status(api.pid)["VmRSS"]
        token = cfg.token("bench", admin=True, ttl_s=3600)
        rng = random.Random(level)
        ids = [f"/tasks/{task_id(rng.randrange(level))}" for _ in range(SAMPLE_PATHS)]
        users = [
            f"/users/user{rng.randrange(min(level, USERS))}/tasks?limit=20"
            for _ in range(SAMPLE_PATHS)
        ]
        _wrk(url, ids, token, conns, 2, raw)  # warm-up, not measured
        row["get"] = _wrk(url, ids, token, conns, seconds, raw)
        row["list"] = _wrk(url, users, token, conns, seconds, raw)
        row["rss_after_load"] = proc_status(api.pid)
    finally:
        api.terminate()
    row["disk_bytes"] = _disk_bytes(state)
    api, _, warm_s = _start_api(cfg, state, f"api-warm-{level}")
    row["warm_s"] = warm_s
    row["rss_warm_ready"] = proc_status(api.pid)["VmRSS"]
    api.terminate()
    return row


def run(
    services: Services, raw: Path, levels: list[int], seconds: float, conns: int = 32
) -> dict[str, Any]:
    """Fill ``task.status`` level by level and measure the API at each level."""
    raw.mkdir(parents=True, exist_ok=True)
    started = (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0])
    cfg = services.stack(partitions=PARTITIONS)
    topic = cfg.topic("task.status")
    asyncio.run(create_topic(cfg.bootstrap, topic, PARTITIONS, cleanup_policy="compact"))
    rows, filled, fill_s = [], 0, 0.0
    for level in sorted(levels):
        print(f"   status view at {level} tasks: filling", flush=True)
        fill_s += asyncio.run(fill(cfg.bootstrap, topic, filled, level))
        filled = level
        print(f"   status view at {level} tasks: measuring", flush=True)
        rows.append(_measure(cfg, level, raw, seconds, conns))
        rows[-1]["loadavg"] = os.getloadavg()[0]
        print(f"   {json.dumps(rows[-1], default=str)}", flush=True)
    return {
        "levels": rows,
        "fill_s": fill_s,
        "conns": conns,
        "seconds": seconds,
        "partitions": PARTITIONS,
        "users": USERS,
        "started": started[0],
        "loadavg_start": started[1],
        "loadavg_end": os.getloadavg()[0],
    }


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def plot(results: dict[str, Any], out_dir: Path) -> list[str]:
    """RSS against the number of tasks (PNG); returns its file name."""
    import matplotlib.pyplot as plt  # the report's plotting library (bench extra)

    rows = results["levels"]
    xs = [r["tasks"] / 1000 for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(xs, [mb(r["rss_ready"]) for r in rows], marker="o", label="ready (cold)")
    ax.plot(xs, [mb(r["rss_after_load"]["VmRSS"]) for r in rows], marker="s", label="after load")
    ax.plot(xs, [mb(r["rss_warm_ready"]) for r in rows], marker="^", label="ready (warm)")
    ax.axhline(TARGETS["rss_mb"], color="grey", lw=0.8, ls=":")
    ax.set(
        xlabel="finished tasks on task.status (thousands)", ylabel="API RSS (MB)", ylim=(0, None)
    )
    ax.set_title("API memory against the number of tasks")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "api_rss_vs_tasks.png", dpi=110)
    plt.close(fig)
    return ["api_rss_vs_tasks.png"]


def section(results: dict[str, Any]) -> list[str]:
    """The report's section (markdown lines)."""
    rows = results["levels"]
    loads = ", ".join(f"{r.get('loadavg', 0):.1f}" for r in rows)
    out = [
        "## Status view at scale (issue 12.5, API)",
        "",
        f"`task.status` ({results['partitions']} partitions) filled with finished tasks of "
        f"{results['users']} users, level by level; at each level a fresh API on an empty "
        "state directory (cold: it rebuilds its RocksDB store from the topic), wrk with "
        f"{results['conns']} connections for {results['seconds']} s on `GET /tasks/{{id}}` "
        "(random ids) and on `GET /users/{id}/tasks?limit=20` (random users), then a restart "
        "on the same directory (warm). Ready: process start to `/readyz` 200. The tasks are "
        "`failed` records (about 450 bytes each), so `GET /tasks/{id}` answers from the view "
        "alone (a `completed` task's GET also fetches its transcript from S3). The broker, "
        "wrk and the API share the machine's cores.",
        "",
        f"Run {results.get('started', '?')}; load average (1 min) "
        f"{results.get('loadavg_start', 0):.1f} at the start, "
        f"{results.get('loadavg_end', 0):.1f} at the end (after each level: "
        f"{loads}), on a machine shared with other "
        "test runs: the latencies move with that load (wrk's 32 connections keep the "
        "one-process API saturated, so p50 is about 32 / req/s and p99 is mostly queueing "
        "behind other processes on the same cores).",
        "",
        "| tasks | cold ready | warm ready | RSS ready | RSS after load (peak) | RSS warm "
        "| GET p50 / p99 | GET req/s | list p50 / p99 | list req/s | store on disk |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        g, ls = r["get"], r["list"]
        out.append(
            f"| {r['tasks']:,} | {r['cold_s']:.1f} s | {r['warm_s']:.1f} s | "
            f"{mb(r['rss_ready']):.0f} MB | {mb(r['rss_after_load']['VmRSS']):.0f} MB "
            f"({mb(r['rss_after_load']['VmHWM']):.0f}) | {mb(r['rss_warm_ready']):.0f} MB | "
            f"{g['p50_us'] / 1000:.1f} / {g['p99_us'] / 1000:.1f} ms | {g['rps']:.0f} | "
            f"{ls['p50_us'] / 1000:.1f} / {ls['p99_us'] / 1000:.1f} ms | {ls['rps']:.0f} | "
            f"{mb(r['disk_bytes']):.0f} MB |"
        )
    top = max(rows, key=lambda r: r["tasks"])
    rss = mb(max(top["rss_after_load"]["VmHWM"], top["rss_warm_ready"]))
    errors = sum(r[k]["non_200"] + r[k]["socket_errors"] for r in rows for k in ("get", "list"))
    out += [
        "",
        f"Targets at {top['tasks']:,} tasks:",
        "",
        "| figure | measured | target | met |",
        "| --- | ---: | --- | --- |",
        f"| API RSS (peak) | {rss:.0f} MB | <= {TARGETS['rss_mb']} MB | "
        f"{_met(rss <= TARGETS['rss_mb'])} |",
        f"| warm restart to ready | {top['warm_s']:.1f} s | <= {TARGETS['warm_s']} s | "
        f"{_met(top['warm_s'] <= TARGETS['warm_s'])} |",
        f"| cold rebuild to ready | {top['cold_s']:.0f} s | <= {TARGETS['cold_s']} s | "
        f"{_met(top['cold_s'] <= TARGETS['cold_s'])} |",
        f"| GET /tasks/{{id}} p99 at {results['conns']} connections | "
        f"{top['get']['p99_us'] / 1000:.1f} ms | <= {TARGETS['get_p99_ms']} ms | "
        f"{_met(top['get']['p99_us'] / 1000 <= TARGETS['get_p99_ms'])} |",
        f"| non-200 answers or socket errors (all runs) | {errors} | 0 | {_met(errors == 0)} |",
        "",
        "![API RSS against tasks](api_rss_vs_tasks.png)",
        "",
    ]
    return out


def main() -> int:
    """``python -m bench.status_scale [levels...]``: this scenario alone, raw JSON and section."""
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("levels", nargs="*", type=int, default=[100_000, 500_000])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "status-scale")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="medvoice-bench-"))
    services = Services(work).start()
    try:
        results = run(services, args.out / "raw", args.levels, args.seconds)
    finally:
        services.stop()
        shutil.rmtree(work, ignore_errors=True)
    (args.out / "status_scale.json").write_text(json.dumps(results, indent=1, default=str))
    plot(results, args.out)
    (args.out / "status_scale.md").write_text("\n".join(section(results)))
    print("\n".join(section(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
