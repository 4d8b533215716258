"""Scaling: throughput with 1 and 2 worker processes, whisper on this machine's CPU and a
remote (Riva-protocol) backend whose cost is a simulated service time; CPU per audio second."""

import asyncio
import time
from pathlib import Path
from typing import Any

from bench.clips import Clip
from bench.common import Services, cpu_seconds, spread
from bench.pipeline import events_for, submit_and_wait, upload
from tests.fixtures.kafka_broker import free_port
from tests.fixtures.processes import ManagedProcess, python_module
from tests.fixtures.stack import StackConfig, start_worker

PARTITIONS = 2  # one per worker at 2 workers; events are spread round-robin over them


def start_riva_sim(log_dir: Path, per_audio_s: float) -> tuple[ManagedProcess, str]:
    """The Riva test server in simulated mode (sleeps per audio second, no CPU)."""
    port = free_port()
    proc = ManagedProcess(
        f"riva-{port}",
        python_module(
            "tests.fixtures.riva_server",
            "--port",
            str(port),
            "--service-time-per-audio-s",
            str(per_audio_s),
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
) -> dict[str, Any]:
    cfg: StackConfig = services.stack(partitions=PARTITIONS)
    upload(cfg, clips + warm)
    procs = []
    for _ in range(workers):
        proc, _ = start_worker(cfg, **env)
        services.started.append(proc)
        procs.append(proc)
    # Warm-up: one task per partition, so every worker is assigned, loaded and warm.
    asyncio.run(submit_and_wait(cfg, events_for(warm * PARTITIONS), partitions=PARTITIONS))
    audio = sum(c.duration_s for c in clips)
    runs = []
    for _ in range(reps):
        pids = [p.pid for p in procs]
        cpu0 = sum(cpu_seconds(p) for p in pids)
        ext0 = sum(cpu_seconds(p) for p in extra_pids)
        r = asyncio.run(submit_and_wait(cfg, events_for(clips), partitions=PARTITIONS))
        cpu = sum(cpu_seconds(p) for p in pids) - cpu0
        ext = sum(cpu_seconds(p) for p in extra_pids) - ext0
        runs.append(
            {
                "wall_s": r["wall_s"],
                "audio_per_wall": audio / r["wall_s"],
                "worker_cpu_per_audio_s": cpu / audio,
                "server_cpu_per_audio_s": ext / audio,
                "failed": r["failed"],
            }
        )
    for proc in procs:
        proc.terminate()
        services.started.remove(proc)
    return {
        "workers": workers,
        "audio_s": audio,
        "tasks": len(clips),
        "audio_per_wall": spread([r["audio_per_wall"] for r in runs]),
        "wall_s": spread([r["wall_s"] for r in runs]),
        "worker_cpu_per_audio_s": spread([r["worker_cpu_per_audio_s"] for r in runs]),
        "server_cpu_per_audio_s": spread([r["server_cpu_per_audio_s"] for r in runs]),
        "failed": sum(r["failed"] for r in runs),
        "runs": runs,
    }


def run(
    services: Services,
    whisper_clips: list[Clip],
    riva_clips: list[Clip],
    warm: list[Clip],
    reps: int,
    service_time_per_audio_s: float,
) -> dict[str, Any]:
    """Measure every configuration; returns the section's data."""
    out: dict[str, Any] = {"partitions": PARTITIONS, "configs": []}
    for workers in (1, 2):
        res = _config(services, whisper_clips, warm, workers, reps, {}, [])
        res["backend"] = "whisper"
        out["configs"].append(res)
        print(
            f"  scaling whisper x{workers}: {res['audio_per_wall']['median']:.1f} audio s/s",
            flush=True,
        )
    riva, uri = start_riva_sim(services.work_dir / "logs", service_time_per_audio_s)
    services.started.append(riva)
    env = {"MEDVOICE_ASR__BACKEND": "riva", "MEDVOICE_RIVA__URI": uri}
    for workers in (1, 2):
        res = _config(services, riva_clips, warm, workers, reps, env, [riva.pid])
        res["backend"] = "riva (simulated service time)"
        out["configs"].append(res)
        print(
            f"  scaling riva-sim x{workers}: {res['audio_per_wall']['median']:.1f} audio s/s",
            flush=True,
        )
    riva.terminate()
    services.started.remove(riva)
    out["service_time_per_audio_s"] = service_time_per_audio_s
    return out
