"""Scaling: throughput by worker processes and by tasks in flight per worker, whisper on this
machine's CPU and a remote Riva-protocol backend simulating a batching GPU server; CPU per
audio second of the workers."""

import asyncio
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.clips import Clip
from bench.common import Services, cpu_seconds, machine_busy_seconds, py_spy, spread
from bench.pipeline import events_for, submit_and_wait, summarise_profile, upload
from tests.fixtures.kafka_broker import free_port
from tests.fixtures.processes import ManagedProcess, python_module
from tests.fixtures.riva_server import BatchModel
from tests.fixtures.stack import StackConfig, start_worker

PARTITIONS = 4  # one per worker at 4 workers; events are spread round-robin over them
BACKEND_WHISPER = "whisper"
BACKEND_RIVA = "riva (batching model)"
# (workers, tasks in flight per worker) against the batching server
RIVA_CONFIGS = ((1, 1), (1, 4), (1, 16), (1, 32), (1, 64), (2, 1), (4, 1))
MIN_TASKS = 32  # per configuration; more where more are in flight, so the bound is reached


def start_riva_batching(log_dir: Path, model: BatchModel) -> tuple[ManagedProcess, str]:
    """The Riva test server simulating a batching GPU server (no CPU spent on ASR)."""
    port = free_port()
    proc = ManagedProcess(
        f"riva-{port}",
        python_module(
            "tests.fixtures.riva_server",
            "--port",
            str(port),
            "--batching",
            "--batch-fixed-s",
            str(model.fixed_s),
            "--batch-item-s",
            str(model.per_item_s),
            "--batch-window-s",
            str(model.window_s),
            "--max-batch",
            str(model.max_batch),
        ),
        {},
        log_dir,
    )
    deadline = time.monotonic() + 120
    while "listening" not in proc.log_text():
        if time.monotonic() > deadline or not proc.alive():
            raise RuntimeError(f"riva test server did not start:\n{proc.tail()}")
        time.sleep(0.2)  # polling its log for the listening line
    return proc, f"127.0.0.1:{port}"


def _config(
    services: Services,
    clips: list[Clip],
    warm: list[Clip],
    workers: int,
    reps: int,
    env: dict[str, str],
    extra_pids: list[int],
    profile_to: Path | None = None,
) -> dict[str, Any]:
    cfg: StackConfig = services.stack(partitions=PARTITIONS)
    upload(cfg, clips + warm)
    started = [start_worker(cfg, wait_ready=False, **env) for _ in range(workers)]
    services.started += [proc for proc, _ in started]
    for proc, url in started:  # all at once: one by one, each join is another rebalance
        proc.wait_http(f"{url}/readyz")
    procs = [proc for proc, _ in started]
    # Warm-up: one task per partition, so every worker is assigned, loaded and warm.
    asyncio.run(submit_and_wait(cfg, events_for(warm * PARTITIONS), partitions=PARTITIONS))
    audio = sum(c.duration_s for c in clips)
    runs = []
    for _ in range(reps):
        pids = [p.pid for p in procs]
        cpu0 = sum(cpu_seconds(p) for p in pids)
        ext0 = sum(cpu_seconds(p) for p in extra_pids)
        busy0 = machine_busy_seconds()
        r = asyncio.run(submit_and_wait(cfg, events_for(clips), partitions=PARTITIONS))
        busy = machine_busy_seconds() - busy0
        cpu = sum(cpu_seconds(p) for p in pids) - cpu0
        ext = sum(cpu_seconds(p) for p in extra_pids) - ext0
        runs.append(
            {
                "wall_s": r["wall_s"],
                "audio_per_wall": audio / r["wall_s"],
                "worker_cpu_per_audio_s": cpu / audio,
                "server_cpu_per_audio_s": ext / audio,
                "machine_cores_busy": busy / r["wall_s"],
                "failed": r["failed"],
            }
        )
    profile: dict[str, Any] = {}
    if profile_to is not None:  # one more batch, not measured: where the worker's CPU goes
        why_not = py_spy(
            procs[0].pid,
            profile_to,
            lambda: asyncio.run(submit_and_wait(cfg, events_for(clips), partitions=PARTITIONS)),
            rate=50,
            threads=True,
        )
        profile = {"error": why_not} if why_not else summarise_profile(profile_to)
    for proc in procs:
        proc.terminate()
        services.started.remove(proc)
    return {
        "profile": profile,
        "workers": workers,
        "in_flight": int(env.get("MEDVOICE_WORKER__MAX_IN_FLIGHT", "1")),
        "audio_s": audio,
        "tasks": len(clips),
        "audio_per_wall": spread([r["audio_per_wall"] for r in runs]),
        "wall_s": spread([r["wall_s"] for r in runs]),
        "worker_cpu_per_audio_s": spread([r["worker_cpu_per_audio_s"] for r in runs]),
        "server_cpu_per_audio_s": spread([r["server_cpu_per_audio_s"] for r in runs]),
        "machine_cores_busy": spread([r["machine_cores_busy"] for r in runs]),
        "failed": sum(r["failed"] for r in runs),
        "runs": runs,
    }


def _batches(log_text: str) -> list[int]:
    """Batch sizes the server logged at exit (``batches served: ...``), if it did."""
    for line in reversed(log_text.splitlines()):
        if "batch sizes:" in line:
            return [int(x) for x in line.rsplit(":", 1)[1].split()]
    return []


def run(
    services: Services,
    whisper_clips: list[Clip],
    riva_clip: Clip,
    warm: list[Clip],
    reps: int,
    raw: Path,
    model: BatchModel | None = None,
) -> dict[str, Any]:
    """Measure every configuration; returns the section's data."""
    model = model or BatchModel()
    out: dict[str, Any] = {"partitions": PARTITIONS, "configs": [], "batch_model": asdict(model)}
    for workers in (1, 2):
        res = _config(services, whisper_clips, warm, workers, reps, {}, [])
        res["backend"] = BACKEND_WHISPER
        out["configs"].append(res)
        print(
            f"  scaling whisper x{workers}: {res['audio_per_wall']['median']:.1f} audio s/s",
            flush=True,
        )
    riva, uri = start_riva_batching(services.work_dir / "logs", model)
    services.started.append(riva)
    for workers, in_flight in RIVA_CONFIGS:
        env = {
            "MEDVOICE_ASR__BACKEND": "riva",
            "MEDVOICE_RIVA__URI": uri,
            "MEDVOICE_WORKER__MAX_IN_FLIGHT": str(in_flight),
        }
        tasks = max(MIN_TASKS, 4 * workers * in_flight)
        prof = raw / "worker-profile-riva-32.txt" if (workers, in_flight) == (1, 32) else None
        res = _config(services, [riva_clip] * tasks, warm, workers, reps, env, [riva.pid], prof)
        res["backend"] = BACKEND_RIVA
        out["configs"].append(res)
        print(
            f"  scaling riva-batching x{workers} workers, {in_flight} in flight: "
            f"{res['audio_per_wall']['median']:.1f} audio s/s",
            flush=True,
        )
    riva.terminate()
    services.started.remove(riva)
    out["batch_sizes"] = _batches(riva.log_text())
    return out


def speedup(sc: dict[str, Any]) -> dict[str, float] | None:
    """One worker at 32 (else its largest) in-flight count vs one at a time (riva).

    Besides the ratios: ``cores``, the cores the worker kept busy there (audio s/s x CPU s
    per audio s), and ``cpu_bound``, how far past one at a time a worker that keeps one
    core busy can go at that CPU per audio second (the event loop and the decoding hold
    one interpreter lock, so one core is about what one worker process gets).
    """
    riva = [c for c in sc["configs"] if c["backend"] == BACKEND_RIVA and c["workers"] == 1]
    one = next((c for c in riva if c["in_flight"] == 1), None)
    if one is None or len(riva) < 2:
        return None
    many = {c["in_flight"]: c for c in riva}
    best = many.get(32) or many[max(many)]
    cpu = best["worker_cpu_per_audio_s"]["median"]
    base = one["audio_per_wall"]["median"]
    return {
        "in_flight": best["in_flight"],
        "ratio": best["audio_per_wall"]["median"] / base,
        "cpu_ratio": cpu / one["worker_cpu_per_audio_s"]["median"],
        "cores": best["audio_per_wall"]["median"] * cpu,
        "cpu_bound": 1 / cpu / base,
    }
