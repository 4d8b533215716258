"""``make bench``: every benchmark in one run, written to ``bench/results/REPORT.md``.

Starts its own Apache Kafka broker (Maven jars, ``make kafka-jars``), moto S3 endpoint,
Redis (for the Celery replica) and the project's processes; ``--quick`` is the smoke
version run by the test suite (seconds, not minutes; its numbers mean nothing).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import pipeline, report, scaling, soak, status_scale, submission, worker_state
from bench.clips import make_clips
from bench.common import Services, machine

RESULTS = Path(__file__).parent / "results"
SECTIONS = ("submission", "pipeline", "scaling", "status_scale", "worker_state", "soak")


def _params(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "levels": [8],
            "seconds": 1,
            "reps": 1,
            "warmup_s": 1,
            "clips_s": [5, 10],
            "latency": [(0, 3)],
            "pipeline_reps": 1,
            "profile": False,
            "scaling": False,
            "status_levels": [2000],
            "status_seconds": 1,
            "worker_levels": [],  # the worker-table scenario takes minutes even when small
            "soak_runs": 0,  # each run is minutes: the SIGKILL series is the full bench's
        }
    return {
        "levels": [8, 32, 64],
        "seconds": 3,
        "reps": 3,
        "warmup_s": 2,
        "clips_s": [5, 10, 30, 60, 120, 240],
        "latency": [(0, 12), (1, 6)],  # (clip index, how many tasks) for the overhead run
        "pipeline_reps": 2,
        "profile": True,
        "scaling": True,
        "scaling_reps": 2,
        "whisper_tasks": 6,  # x the 30 s clip
        "status_levels": [100_000, 500_000, 2_000_000],  # finished tasks on task.status
        "status_seconds": 10,
        "worker_levels": [100_000, 500_000, 2_000_000],  # finished tasks in the table's changelog
        "soak_runs": 10,  # the SIGKILL series at 32 in flight (issue item 1: 10 in a row)
    }


def _scaling_notes(sc: dict[str, Any]) -> list[str]:
    by = {(c["backend"], c["workers"], c.get("in_flight", 1)): c for c in sc["configs"]}
    w1 = by.get((scaling.BACKEND_WHISPER, 1, 1))
    w2 = by.get((scaling.BACKEND_WHISPER, 2, 1))
    r1 = by.get((scaling.BACKEND_RIVA, 1, 1))
    notes = []
    if w1:
        cpu = w1["worker_cpu_per_audio_s"]["median"]
        rate = w1["audio_per_wall"]["median"]
        gain = w2["audio_per_wall"]["median"] / rate if w2 else 1.0
        if gain < 1.3:
            here = "so a second worker adds contention, not capacity (the ~1x above)."
        else:
            here = (
                f"yet a second worker gained {gain:.2f}x: one worker used only "
                f"{rate * cpu:.1f} cores' worth ({rate:.1f} audio s/s x {cpu:.3f}), its ASR "
                "threads idle while it decodes, reads S3 and writes Kafka."
            )
        notes.append(
            f"- **CPU cost**: whisper tiny.en (int8, beam 1) costs {cpu:.3f} CPU s per audio "
            f"second in the worker (all of it: decode, ASR, Kafka, S3). On a machine whose "
            f"cores are free, throughput is bounded by cores / {cpu:.3f} = "
            f"{1 / cpu:.1f} audio s/s per core: about {8 / cpu:.0f} audio s/s on 8 cores and "
            f"{32 / cpu:.0f} on 32, with one worker per 2 cores (`MEDVOICE_WHISPER__CPU_THREADS"
            f"=2`) and at least as many partitions as workers. Here 2 workers share 2 "
            f"cores, {here}"
        )
    if r1:
        wc = r1["worker_cpu_per_audio_s"]["median"]
        fleet = {
            w: c["audio_per_wall"]["median"]
            for (b, w, f), c in by.items()
            if b == scaling.BACKEND_RIVA and f == 1
        }
        gain = scaling.speedup(sc)
        line = (
            f"- **Remote backend**: one task at a time, a worker waits for each batch-of-one "
            f"round trip and costs {wc:.4f} CPU s per audio second itself (decode, gRPC, S3, "
            "Kafka); more workers at 1 in flight each scale it ("
            + ", ".join(f"{w}: {v:.0f}" for w, v in sorted(fleet.items()))
            + " audio s/s), one process and partition per request in flight."
        )
        if gain:
            line += (
                f" One worker with {gain['in_flight']} tasks in flight "
                f"(`MEDVOICE_WORKER__MAX_IN_FLIGHT`) reached {gain['ratio']:.1f}x its "
                f"one-at-a-time throughput, at {gain['cpu_ratio']:.2f}x the worker CPU per "
                "audio second: the server batches the concurrent requests; past that the "
                "worker's own CPU (decode, S3, Kafka) on these shared cores is the limit. "
                f"It kept {gain['cores']:.2f} cores busy there; at that CPU per audio second, "
                f"one busy core allows {gain['cpu_bound']:.1f}x the one-at-a-time throughput, "
                f"so 10x asks for {gain['cpu_bound'] / 10:.2f} of the CPU per audio second it "
                "spends now (where it goes: the profile below)."
            )
        notes.append(line)
    return notes


def _findings(results: dict[str, Any]) -> list[str]:
    out = []
    sub = results.get("submission")
    if sub:
        t = sub["targets"]
        c = "32" if "32" in t["medvoice"]["levels"] else str(sub["levels"][0])
        ours, stub = t["medvoice"]["levels"][c], t["medvoice_s3stub"]["levels"][c]
        cpu_o = t["medvoice"]["cpu_ms_per_request"]["median"]
        cpu_s = t["medvoice_s3stub"]["cpu_ms_per_request"]["median"]
        cpu_b = t["bare"]["cpu_ms_per_request"]["median"]
        cpu_c = t["celery"]["cpu_ms_per_request"]["median"]
        route = t.get("medvoice_route", {})
        cpu_r = route.get("cpu_ms_per_request", {}).get("median")
        off = (
            f" With the fast path off (every submission through FastAPI's routing, dependency "
            f"solving and response serialisation) the same API spends {cpu_r:.2f} ms and "
            f"answers {route['levels'][c]['rps']['median']:.0f} req/s."
            if cpu_r is not None
            else ""
        )
        out.append(
            f"- Submission: at {c} connections the API answers {ours['rps']['median']:.0f} "
            f"req/s against moto and {stub['rps']['median']:.0f} req/s against an instant S3 "
            f"stub; it spends {cpu_o:.2f} ms (moto) / {cpu_s:.2f} ms (stub) of CPU per "
            f"request against {cpu_b:.2f} ms for the bare endpoint and {cpu_c:.2f} ms for the "
            "Celery replica. The difference to the bare endpoint: the S3 HEAD (SigV4-signed, "
            "sent on kept-alive asyncio streams), two Kafka records per task (the queued "
            "status, acknowledged before AudioSubmitted is sent, acks=all), the parameters "
            "validated with the route's model, and the bearer token (fully verified once, then "
            "answered from the verified-token cache until its exp), on 2 cores shared with the "
            "broker's JVM, moto and wrk." + off + " moto, a Python server on the same cores, "
            "costs about 5 ms of CPU per HEAD and caps the first figure."
        )
    return out


def main() -> int:
    """Run the benchmarks and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="the smoke version (seconds)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="report and plots go here")
    parser.add_argument("--bootstrap", default="", help="use this Kafka instead of starting one")
    parser.add_argument("--s3-url", default="", help="use this S3 endpoint instead of moto")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=SECTIONS,
        default=list(SECTIONS),
    )
    args = parser.parse_args()
    for tool in ("wrk", "redis-server", "espeak-ng", "java"):
        if not shutil.which(tool):
            sys.stderr.write(f"{tool} not found: apt-get install -y wrk redis-server espeak-ng\n")
            return 2
    p = _params(args.quick)
    out: Path = args.out
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="medvoice-bench-"))
    services = Services(work, bootstrap=args.bootstrap, s3_url=args.s3_url)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": machine(),
        "params": {k: v for k, v in p.items() if k != "latency"},
        "commands": [
            "apt-get install -y wrk redis-server espeak-ng default-jre-headless maven",
            "make install kafka-jars   # .venv and the Apache Kafka jars",
            ".venv/bin/pip install 'celery[redis]' redis matplotlib py-spy psutil",
            "make bench                # = .venv/bin/python -m bench.run",
            ".venv/bin/python -m bench.run --quick --out /tmp/b   # the smoke version",
        ],
    }
    try:
        services.start()
        results["kafka"] = services.kafka_version if not args.bootstrap else "(given)"
        print(f"services up: Kafka {services.bootstrap}, S3 {services.s3_url}", flush=True)
        clips = make_clips(p["clips_s"], raw / "clips")
        if "submission" in args.only:
            print("1. submission path", flush=True)
            results["submission"] = submission.run(
                services, raw, p["levels"], p["seconds"], p["reps"], p["warmup_s"],
                profile_api=p["profile"],
            )  # fmt: skip
        if "pipeline" in args.only:
            print("2. pipeline overhead, worker memory and profile", flush=True)
            latency = [clips[i] for i, n in p["latency"] for _ in range(n)]
            results["pipeline"] = pipeline.run(
                services, raw, clips, latency, p["pipeline_reps"], p["profile"]
            )
        if p["scaling"] and "scaling" in args.only:
            print("3. scaling", flush=True)
            c30 = next(c for c in clips if 25 <= c.duration_s <= 40)
            results["scaling"] = scaling.run(
                services, [c30] * p["whisper_tasks"], c30, clips[:1], p["scaling_reps"], raw
            )
            results["scaling_notes"] = _scaling_notes(results["scaling"])
        if "status_scale" in args.only:
            print("4. status view at scale", flush=True)
            results["status_scale"] = status_scale.run(
                services, raw / "status", p["status_levels"], p["status_seconds"]
            )
        if p["worker_levels"] and "worker_state" in args.only:
            print("5. worker status table at scale", flush=True)
            results["worker_state"] = worker_state.run(
                services, raw / "worker_state", p["worker_levels"]
            )
    finally:
        services.stop()
        shutil.rmtree(work, ignore_errors=True)
    if p["soak_runs"] and "soak" in args.only:
        # After the bench's own services are down: each run starts its own broker and S3.
        print(f"6. SIGKILL series, {p['soak_runs']} runs", flush=True)
        results["soak"] = soak.run(raw / "soak", p["soak_runs"])
    results["total_s"] = time.monotonic() - started
    results["loadavg_end"] = os.getloadavg()
    results["findings"] = _findings(results)
    (raw / "results.json").write_text(json.dumps(results, indent=1, default=str))
    pngs = report.plots(results, out)
    (out / "REPORT.md").write_text(report.markdown(results, pngs))
    print(f"wrote {out / 'REPORT.md'} in {results['total_s'] / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
