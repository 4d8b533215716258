"""Submission path: POST /process_audio_v2 on the real API vs a bare endpoint vs the seed's
FastAPI + Celery/Redis, with wrk at several concurrency levels; lost acknowledged tasks."""

import asyncio
import importlib.util
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.common import Services, cpu_seconds, proc_status, py_spy, spread
from producer_api.settings import ApiOptions
from tests.fixtures.driver import put_audio
from tests.fixtures.kafka_broker import free_port
from tests.fixtures.processes import ManagedProcess, python_module
from tests.fixtures.stack import start_api

LUA = Path(__file__).parent / "submit.lua"
USER = "bench-user"
FILE_ID = "bench-file"
TARGETS = ("medvoice", "medvoice_s3stub", "medvoice_route", "bare", "celery")
OURS = ("medvoice", "medvoice_s3stub", "medvoice_route")
READBACK_IDLE_S = 15.0  # stop reading the topic once nothing new came for this long


def run_wrk(
    url: str, path: str, token: str, conns: int, seconds: float, out: Path
) -> dict[str, Any]:
    """One wrk run (1 thread, ``conns`` connections); returns the Lua script's summary."""
    env = {**os.environ, "BENCH_PATH": path, "BENCH_TOKEN": token, "BENCH_OUT": str(out)}
    subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), url],
        check=True,
        capture_output=True,
        env=env,
        timeout=seconds + 60,
    )
    data: dict[str, Any] = json.loads(out.read_text())
    data["rps"] = data["ok"] / (data["duration_us"] / 1e6)
    return data


def _start_redis(log_dir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    proc = ManagedProcess(
        f"redis-{port}",
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        {},
        log_dir,
    )
    deadline = time.monotonic() + 20
    while "Ready to accept connections" not in proc.log_text():
        if time.monotonic() > deadline or not proc.alive():
            raise RuntimeError(f"redis did not start:\n{proc.tail()}")
        time.sleep(0.1)  # polling the log for redis's ready line
    return proc, f"redis://127.0.0.1:{port}/0"


def _start_ref(kind: str, log_dir: Path, *extra: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    proc = ManagedProcess(
        f"{kind}-{port}",
        python_module("bench.refapps", kind, "--port", str(port), *extra),
        {},
        log_dir,
    )
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(f"{url}/docs", timeout_s=60)
    return proc, url


async def _read_submitted(bootstrap: str, topic: str, expected: set[str]) -> tuple[set[str], int]:
    """Task ids (keys) in ``topic`` from the beginning, and the number of records."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: set[str] = set()
    count = 0
    last_new = time.monotonic()
    try:
        while not expected <= seen and time.monotonic() - last_new < READBACK_IDLE_S:
            batch = await consumer.getmany(timeout_ms=500, max_records=10000)
            for recs in batch.values():
                for rec in recs:
                    count += 1
                    seen.add(json.loads(rec.value)["task_id"])
                    last_new = time.monotonic()
    finally:
        await consumer.stop()
    return seen, count


def _profile_api(pid: int, url: str, path: str, token: str, raw: Path) -> dict[str, Any]:
    """py-spy on the API during a 32-connection wrk run (not one of the measured runs)."""
    out = raw / "api-profile.txt"
    why_not = py_spy(
        pid,
        out,
        lambda: run_wrk(url, path, token, 32, 5, raw / "wrk-profile.json"),
        rate=100,
        threads=False,
    )
    if why_not:
        return {"error": why_not}
    return summarise_api_profile(out)


# Each sample goes to the rule of its innermost frame that any rule matches: the code that
# was running, not the framework frames every request's stack starts with.
API_RULES = (
    (
        "S3 existence check (SigV4 signing, HEAD on kept-alive streams)",
        ("s3_probe", "sigv4", "botocore/"),
    ),
    ("Kafka publish (aiokafka, events, CloudEvents headers)", ("aiokafka/", "publisher.py")),
    ("JWT verification and token cache", ("jwt/", "producer_api/auth.py", "token_cache")),
    ("status view (task.status consumer, store)", ("status_view", "status_store", "rocksdict")),
    ("metrics (prometheus_client, observe)", ("prometheus_client", "producer_api/observe.py")),
    ("FastAPI dependencies, parameters, validation", ("fastapi/dependencies", "pydantic")),
    ("route code (ids, events, trace context)", ("producer_api/routes", "opentelemetry", "uuid")),
    ("Starlette/FastAPI routing and middleware", ("starlette/", "fastapi/", "producer_api/")),
    ("HTTP server (uvicorn, httptools/h11)", ("uvicorn/", "h11/", "httptools")),
)


def summarise_api_profile(raw_path: Path) -> dict[str, Any]:
    """Shares of py-spy's samples by the innermost frame a rule names, and the top frames."""
    from collections import Counter

    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = stack.split(";")
        leaves[frames[-1]] += count
        for frame in reversed(frames):
            rule = next(
                (name for name, needles in API_RULES if any(n in frame for n in needles)), None
            )
            if rule is not None:
                buckets[rule] += count
                break
        else:
            buckets["event loop (uvloop) and other"] += count
    return {
        "samples": total,
        "shares": {k: v / total for k, v in buckets.most_common()} if total else {},
        "top_leaf_frames": [(f, c / total) for f, c in leaves.most_common(12)] if total else [],
    }


def run(
    services: Services,
    raw: Path,
    levels: list[int],
    seconds: float,
    reps: int,
    warmup_s: float,
    profile_api: bool = True,
) -> dict[str, Any]:
    """Measure the three targets, interleaved per repetition; returns the section's data."""
    cfg = services.stack()
    log_dir = cfg.log_dir
    put_audio(cfg, USER, FILE_ID, "m4a", b"\x00" * 1024)  # the API only checks it exists
    api, api_url = start_api(cfg)
    services.started.append(api)
    api_idle = proc_status(api.pid)
    redis, redis_url = _start_redis(log_dir)
    services.started.append(redis)
    bare, bare_url = _start_ref("bare", log_dir)
    services.started.append(bare)
    celery, celery_url = _start_ref("celery", log_dir, "--redis", redis_url)
    services.started.append(celery)
    stub_port = free_port()
    stub = ManagedProcess(
        f"s3stub-{stub_port}", python_module("bench.s3stub", "--port", str(stub_port)), {}, log_dir
    )
    services.started.append(stub)
    api2, api2_url = start_api(cfg, MEDVOICE_S3__ENDPOINT_URL=f"http://127.0.0.1:{stub_port}")
    services.started.append(api2)
    # The same API with every submission through FastAPI's route: what the fast path buys.
    api3, api3_url = start_api(
        cfg,
        MEDVOICE_S3__ENDPOINT_URL=f"http://127.0.0.1:{stub_port}",
        MEDVOICE_API__SUBMIT_FAST_PATH="false",
    )
    services.started.append(api3)
    urls = {
        "medvoice": api_url,
        "medvoice_s3stub": api2_url,
        "medvoice_route": api3_url,
        "bare": bare_url,
        "celery": celery_url,
    }
    pids = {
        "medvoice": api.pid,
        "medvoice_s3stub": api2.pid,
        "medvoice_route": api3.pid,
        "bare": bare.pid,
        "celery": celery.pid,
    }
    token = cfg.token(USER, ttl_s=6 * 3600)
    path = f"/process_audio_v2/{USER}?file_id={FILE_ID}&file_extension=m4a"
    out = raw / "wrk.json"
    acked: set[str] = set()
    results: dict[str, dict[int, list[dict[str, Any]]]] = {
        t: {c: [] for c in levels} for t in TARGETS
    }
    cpu_per_req: dict[str, list[float]] = {t: [] for t in TARGETS}
    for target in TARGETS:  # warm up: imports, JIT-less caches, connections, producer batches
        r = run_wrk(urls[target], path, token, max(levels), warmup_s, out)
        if target in OURS:
            acked.update(r["task_ids"])
    for rep in range(reps):
        for conns in levels:
            for target in TARGETS:
                run_wrk(
                    urls[target], path, token, conns, 1, out
                ) if rep == 0 else None  # level warm-up
                cpu0 = cpu_seconds(pids[target])
                r = run_wrk(urls[target], path, token, conns, seconds, out)
                cpu = cpu_seconds(pids[target]) - cpu0
                if target in OURS:
                    acked.update(r["task_ids"])
                if r["ok"]:
                    cpu_per_req[target].append(cpu / r["ok"])
                ids = r.pop("task_ids")
                r["ids_recorded"] = len(ids)
                results[target][conns].append(r)
                print(
                    f"  submission rep {rep + 1}/{reps} c={conns:3d} {target:9s} "
                    f"{r['rps']:7.0f} req/s p50 {r['p50_us'] / 1000:6.1f} ms "
                    f"p99 {r['p99_us'] / 1000:6.1f} ms non-200 {r['non_200']} "
                    f"sockerr {r['socket_errors']}",
                    flush=True,
                )
    api_load = proc_status(api.pid)
    # The API's own cost: the one on the instant S3 stub (moto's HEADs share the cores).
    profile = (
        _profile_api(api2.pid, urls["medvoice_s3stub"], path, token, raw) if profile_api else {}
    )
    # Every acknowledged task must be in audio.submitted (plus those from warm-up runs).
    seen, records = asyncio.run(
        _read_submitted(services.bootstrap, cfg.topic("audio.submitted"), acked)
    )
    lost = acked - seen
    import redis as redis_client

    celery_queued = redis_client.Redis.from_url(redis_url).llen("celery")
    for proc in (celery, bare, redis, api3, api2, stub, api):
        proc.terminate(timeout_s=20)
        services.started.remove(proc)
    summary: dict[str, Any] = {"levels": levels, "seconds": seconds, "reps": reps, "targets": {}}
    for target in TARGETS:
        per_level = {}
        for conns in levels:
            runs = results[target][conns]
            per_level[str(conns)] = {
                "rps": spread([r["rps"] for r in runs]),
                "p50_ms": spread([r["p50_us"] / 1000 for r in runs]),
                "p95_ms": spread([r["p95_us"] / 1000 for r in runs]),
                "p99_ms": spread([r["p99_us"] / 1000 for r in runs]),
                "non_200": sum(r["non_200"] for r in runs),
                "socket_errors": sum(r["socket_errors"] for r in runs),
                "runs": runs,
            }
        summary["targets"][target] = {
            "levels": per_level,
            "cpu_ms_per_request": spread([c * 1000 for c in cpu_per_req[target]]),
        }
    summary["lost"] = {
        "acknowledged": len(acked),
        "found_in_topic": len(acked & seen),
        "lost": len(lost),
        "topic_records": records,
        "lost_examples": sorted(lost)[:5],
    }
    summary["celery_messages_in_redis"] = celery_queued
    summary["api_memory"] = {"idle": api_idle, "after_load": api_load}
    summary["api_profile"] = profile
    summary["profiled"] = "API on the instant S3 stub"
    opts = ApiOptions()
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio loop"
    summary["server"] = f"{opts.http}, header limit {opts.max_header_bytes} bytes, {loop}"
    return summary
