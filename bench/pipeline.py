"""Pipeline overhead: clips through Kafka -> worker -> completed vs the same backend called
directly in one process; whether both hear the same words; worker memory; a py-spy profile
of the worker under load."""

import asyncio
import io
import itertools
import json
import os
import re
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import jiwer
from faster_whisper import decode_audio

from bench.clips import Clip
from bench.common import (
    Services,
    cpu_seconds,
    median,
    percentile,
    proc_status,
    py_spy,
    spread,
)
from processors.audio import SAMPLE_RATE, Pcm
from processors.pipeline import PipelineContext, recognise, transcript_uri
from processors.results import ready_event
from processors.settings import WorkerSettings
from processors.startup import build_context
from schemas.events import AudioSubmitted
from tests.fixtures.driver import StatusFollower, put_audio, submitted
from tests.fixtures.stack import StackConfig, start_worker

USER = "bench-user"
TASK_TIMEOUT_S = 600.0
# Both sides decode at temperature 0 only: with faster-whisper's random temperature fallback
# the engine itself can give another text for the same file, and "the pipeline's WER equals
# the engine's" would compare two samples instead of two pipelines.
DETERMINISTIC = {"MEDVOICE_WHISPER__TEMPERATURE_FALLBACK": "false"}
READY_TIMEOUT_S = 60.0  # TranscriptReady is acknowledged before the completed status


def worker_settings(cfg: StackConfig) -> WorkerSettings:
    """The settings the worker of ``cfg`` reads from its environment."""
    with mock.patch.dict(os.environ, cfg.env()):
        return WorkerSettings()


def engine_context(cfg: StackConfig) -> PipelineContext:
    """What the worker of ``cfg`` builds before consuming (``build_context``: its settings,
    vocabulary, and backend: model, beam, threads, compute type), for ``recognise``."""
    return build_context(worker_settings(cfg))


def engine_text(ctx: PipelineContext, event: AudioSubmitted, data: bytes) -> dict[str, Any]:
    """The engine given the file: faster-whisper's own ``decode_audio`` of the bytes, then
    the worker's ``recognise`` (``transcribe_chunked`` with the worker's options) and the
    ``text`` the worker's TranscriptReady would carry (``ready_event``)."""
    t0 = time.perf_counter()
    pcm = Pcm(decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE))
    t1 = time.perf_counter()
    doc = recognise(ctx, event, pcm)
    t2 = time.perf_counter()
    uri = transcript_uri(ctx, event.user_id, str(event.task_id))
    text = ready_event(event, doc, uri).text
    return {"decode_s": t1 - t0, "asr_s": t2 - t1, "text": text}


def direct(clips: list[Clip], ctx: PipelineContext) -> dict[str, Any]:
    """Decode and transcribe each clip in this process, one after another."""
    per_clip = []
    started = time.perf_counter()
    for clip, event in zip(clips, events_for(clips), strict=True):
        per_clip.append({"clip": clip.name, **engine_text(ctx, event, clip.data)})
    wall = time.perf_counter() - started
    audio = sum(c.duration_s for c in clips)
    decode = sum(c["decode_s"] for c in per_clip)
    return {
        "wall_s": wall,
        "decode_s": decode,
        "audio_s": audio,
        "audio_per_wall": audio / wall,
        "clips": per_clip,
    }


def normalise(text: str) -> str:
    """Lower case, no punctuation (apostrophes dropped, other marks as spaces), single
    spaces: what WER is computed on, the same for every side."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def wer(script: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against the ``script`` the clip was spoken from."""
    return float(jiwer.wer(normalise(script), normalise(hypothesis)))


async def ready_texts(cfg: StackConfig, task_ids: list[str]) -> dict[str, list[str]]:
    """The distinct ``text`` values of the TranscriptReady events of ``task_ids`` (read
    from the beginning of ``transcript.ready``; a redelivered task may have several)."""
    async with StatusFollower(cfg, "transcript.ready") as ready:
        await ready.wait(
            lambda: all(t in ready.by_task for t in task_ids),
            READY_TIMEOUT_S,
            f"TranscriptReady of {len(task_ids)} completed tasks",
        )
    return {t: list(dict.fromkeys(v["text"] for v in ready.by_task[t])) for t in task_ids}


def parity(
    clips: list[Clip], direct_runs: list[dict[str, Any]], pipeline_texts: list[dict[str, Any]]
) -> dict[str, Any]:
    """Per clip and repetition: WER of the engine's and the pipeline's text against the
    script, and whether the two texts are identical.

    ``pipeline_texts``: per repetition, clip name -> the distinct TranscriptReady texts
    of its task (empty: the task did not complete). A clip's WERs are equal in a
    repetition when the pipeline gave exactly one text and its WER is the engine's.
    """
    per_clip = []
    for clip in clips:
        reps = []
        for d, p in zip(direct_runs, pipeline_texts, strict=True):
            engine = next(c["text"] for c in d["clips"] if c["clip"] == clip.name)
            texts = p.get(clip.name, [])
            pipe_wers = [wer(clip.text, t) for t in texts]
            engine_wer = wer(clip.text, engine)
            reps.append(
                {
                    "engine_wer": engine_wer,
                    "pipeline_wer": pipe_wers[0] if pipe_wers else None,
                    "pipeline_texts": len(texts),
                    "wer_equal": pipe_wers == [engine_wer],
                    "identical": texts == [engine],
                    "engine_text": engine,
                    "pipeline_text": texts[0] if texts else None,
                }
            )
        per_clip.append(
            {
                "clip": clip.name,
                "duration_s": clip.duration_s,
                "script_words": len(normalise(clip.text).split()),
                "wer_equal": all(r["wer_equal"] for r in reps),
                "identical": all(r["identical"] for r in reps),
                "reps": reps,
            }
        )
    return {
        "clips": len(per_clip),
        "reps": len(direct_runs),
        "wer_equal_clips": sum(c["wer_equal"] for c in per_clip),
        "identical_clips": sum(c["identical"] for c in per_clip),
        "per_clip": per_clip,
    }


def upload(cfg: StackConfig, clips: list[Clip]) -> None:
    """Store the clips where the API would."""
    for clip in clips:
        put_audio(cfg, USER, clip.name, clip.extension, clip.data)


def events_for(clips: list[Clip]) -> list[AudioSubmitted]:
    """Fresh AudioSubmitted events for ``clips``."""
    return [submitted(USER, c.name, c.extension) for c in clips]


async def submit_and_wait(
    cfg: StackConfig,
    events: list[AudioSubmitted],
    *,
    partitions: int | None = None,
    sequential: bool = False,
) -> dict[str, Any]:
    """Publish ``events`` (round-robin over ``partitions`` when given) and wait for all.

    Returns the wall time from the first publish to the last ``completed`` status (both on
    this machine's clock) and per task: its end-to-end time (completed ``occurred_at``
    minus ``submitted_at``).
    """
    from aiokafka import AIOKafkaProducer

    ids = [str(e.task_id) for e in events]
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, acks="all", linger_ms=0)
    await producer.start()
    async with StatusFollower(cfg) as follower:
        try:
            t0 = time.time()
            pending = []
            for i, ev in enumerate(events):
                ev = ev.model_copy(update={"submitted_at": datetime.now(ev.submitted_at.tzinfo)})
                events[i] = ev
                part = i % partitions if partitions else None
                fut = await producer.send(
                    cfg.topic("audio.submitted"),
                    ev.to_bytes(),
                    key=str(ev.task_id).encode(),
                    partition=part,
                )
                if sequential:
                    await fut
                    await follower.wait(
                        lambda t=ids[i]: bool(follower.finals(t)), TASK_TIMEOUT_S, f"task {i}"
                    )
                else:
                    pending.append(fut)
            await asyncio.gather(*pending)
            await follower.wait(
                lambda: follower.done(ids) == len(ids), TASK_TIMEOUT_S, "all tasks final"
            )
        finally:
            await producer.stop()
    tasks = {}
    last = 0.0
    failed = 0
    for ev in events:
        final = follower.finals(str(ev.task_id))[0]
        if final["status"] != "completed":
            failed += 1
        done_at = datetime.fromisoformat(final["occurred_at"]).timestamp()
        last = max(last, done_at)
        tasks[str(ev.task_id)] = {
            "e2e_s": done_at - ev.submitted_at.timestamp(),
            "done_at": done_at,
            "status": final["status"],
        }
    return {"wall_s": last - t0, "tasks": tasks, "failed": failed}


def work_starts(log_path: Path) -> dict[str, dict[str, float]]:
    """Per task id, when the worker started its work ("work started": after the delivery
    count is on the broker): the log line's time, ``since_submit_s`` and ``checks_s``."""
    out = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if '"work started"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") == "work started":
            out[rec["task_id"]] = {
                "at": datetime.fromisoformat(rec["ts"]).timestamp(),
                "since_submit_s": rec["since_submit_s"],
                "checks_s": rec["checks_s"],
            }
    return out


def queue_gaps(
    tasks: dict[str, dict[str, float]], starts: dict[str, dict[str, float]]
) -> list[float]:
    """Between queued tasks: each task's start of work minus the previous task's completion
    (one worker, one task in flight: tasks run one after another)."""
    ordered = sorted((starts[t]["at"], t) for t in tasks if t in starts)
    return [at - tasks[prev]["done_at"] for (_, prev), (at, _) in itertools.pairwise(ordered)]


def worker_stages(log_path: Path) -> dict[str, dict[str, float]]:
    """Per task id, the stage timings the worker logged with "transcribed"."""
    out = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if '"transcribed"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") == "transcribed":
            out[rec["task_id"]] = rec["stages"]
    return out


WORKER_RULES = (
    ("ASR (CTranslate2 / faster-whisper)", ("faster_whisper", "ctranslate2")),
    ("audio decode (PyAV)", ("processors/audio.py",)),
    ("S3 (boto3/botocore)", ("botocore", "boto3", "urllib3")),
    ("Riva client (gRPC)", ("riva/client", "grpc")),
    ("Kafka client (aiokafka)", ("aiokafka",)),
    ("Faust / mode (streams, tables, commits)", ("faust/", "mode/")),
    ("JSON / pydantic (events, documents)", ("pydantic", "json/")),
    ("asyncio event loop / selectors", ("asyncio", "selectors", "uvloop")),
    ("thread pool handoff", ("concurrent/futures", "threading.py")),
)
API_RULES = (
    (
        "S3 existence check (boto3/botocore: signing, HTTP, parsing)",
        ("botocore", "boto3", "urllib3"),
    ),
    ("Kafka publish (aiokafka)", ("aiokafka",)),
    ("JWT verification", ("producer_api/auth.py", "producer_api/token.py", "jwt", "cryptography")),
    ("pydantic (events, responses)", ("pydantic",)),
    ("status view (task.status consumer)", ("status_view",)),
    ("metrics (prometheus_client)", ("prometheus",)),
    (
        "HTTP server and framework (uvicorn, h11, starlette, fastapi)",
        ("uvicorn", "h11", "starlette", "fastapi", "httptools"),
    ),
    (
        "asyncio event loop / selectors / threads",
        ("asyncio", "selectors", "uvloop", "threading.py", "concurrent/futures"),
    ),
)


def summarise_profile(raw_path: Path, *, api: bool = False) -> dict[str, Any]:
    """Shares of py-spy's samples by where the process spends them, and the top frames.

    Each sample goes to the first rule (in order) any of its frames matches.
    """
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    rules = API_RULES if api else WORKER_RULES
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = stack.split(";")
        for name, needles in rules:
            if any(n in f for f in frames for n in needles):
                buckets[name] += count
                break
        else:
            buckets["other"] += count
        leaves[frames[-1]] += count
    return {
        "samples": total,
        "shares": {k: v / total for k, v in buckets.most_common()} if total else {},
        "top_leaf_frames": [(f, c / total) for f, c in leaves.most_common(12)] if total else [],
    }


def run(
    services: Services,
    raw: Path,
    clips: list[Clip],
    latency_clips: list[Clip],
    reps: int,
    profile: bool,
) -> dict[str, Any]:
    """Measure the pipeline section; returns its data."""
    cfg = services.stack(partitions=2)
    cfg.extra_env.update(DETERMINISTIC)  # the worker and the engine side alike
    upload(cfg, clips + latency_clips)
    worker, _ = start_worker(cfg, PYTHONUNBUFFERED="1")  # log lines on disk as written
    services.started.append(worker)
    worker_idle = proc_status(worker.pid)
    ctx = engine_context(cfg)
    # Warm both sides up on the shortest clip (first-call allocations, model pages).
    engine_text(ctx, events_for(clips[:1])[0], clips[0].data)
    asyncio.run(submit_and_wait(cfg, events_for(clips[:1])))
    direct_runs, pipe_runs, pipe_texts, gaps = [], [], [], []
    for rep in range(reps):  # interleaved, so drifting machine load hits both sides alike
        d = direct(clips, ctx)
        direct_runs.append(d)
        cpu0 = cpu_seconds(worker.pid)
        events = events_for(clips)
        p = asyncio.run(submit_and_wait(cfg, events))
        p["worker_cpu_s"] = cpu_seconds(worker.pid) - cpu0
        p["audio_s"] = d["audio_s"]
        p["audio_per_wall"] = d["audio_s"] / p["wall_s"]
        gaps += queue_gaps(p["tasks"], work_starts(worker.log_path))
        pipe_runs.append(p)
        # After the timed window: the text of each clip's TranscriptReady.
        ids = {str(e.task_id): c.name for c, e in zip(clips, events, strict=True)}
        done = [t for t in ids if p["tasks"][t]["status"] == "completed"]
        texts = asyncio.run(ready_texts(cfg, done))
        pipe_texts.append({ids[t]: v for t, v in texts.items()})
        print(
            f"  pipeline rep {rep + 1}/{reps}: direct {d['wall_s']:.1f} s, "
            f"pipeline {p['wall_s']:.1f} s for {d['audio_s']:.0f} s of audio",
            flush=True,
        )
    worker_load = proc_status(worker.pid)
    # Per-task overhead: one task at a time, end-to-end minus the worker's own ASR time.
    seq = asyncio.run(submit_and_wait(cfg, events_for(latency_clips), sequential=True))
    stages = worker_stages(worker.log_path)
    starts = work_starts(worker.log_path)
    to_start = [starts[t]["since_submit_s"] for t in seq["tasks"] if t in starts]
    checks = [starts[t]["checks_s"] for t in seq["tasks"] if t in starts]
    overheads: list[float] = []
    stage_samples: dict[str, list[float]] = {"download": [], "decode": [], "asr": [], "upload": []}
    for task_id, t in seq["tasks"].items():
        st = stages.get(task_id)
        if st is None:
            continue
        overheads.append(t["e2e_s"] - st["asr"])
        for k in stage_samples:
            stage_samples[k].append(st.get(k, 0.0))
    print(
        f"  overhead p50 {median(overheads) * 1000:.0f} ms p99 "
        f"{percentile(overheads, 99) * 1000:.0f} ms over {len(overheads)} tasks",
        flush=True,
    )
    prof: dict[str, Any] = {}
    if profile:
        prof_raw = raw / "worker-profile.txt"
        why_not = py_spy(
            worker.pid,
            prof_raw,
            lambda: asyncio.run(submit_and_wait(cfg, events_for(clips[: max(2, len(clips) - 1)]))),
            rate=50,
            threads=True,
        )
        prof = {"error": why_not} if why_not else summarise_profile(prof_raw)
    worker.terminate()
    services.started.remove(worker)
    direct_asr = {c["clip"]: c["asr_s"] for d in direct_runs for c in d["clips"]}
    return {
        "clips": [{"name": c.name, "duration_s": c.duration_s} for c in clips],
        "audio_s": sum(c.duration_s for c in clips),
        "whisper": {
            "beam_size": ctx.settings.whisper.beam_size,
            "cpu_threads": ctx.settings.whisper.cpu_threads,
            "chunk_s": ctx.settings.asr.chunk_s,
            "temperature_fallback": ctx.settings.whisper.temperature_fallback,
            "model": ctx.backend.model,
        },
        "parity": parity(clips, direct_runs, pipe_texts),
        "direct": {
            "wall_s": spread([d["wall_s"] for d in direct_runs]),
            "audio_per_wall": spread([d["audio_per_wall"] for d in direct_runs]),
            "decode_s": spread([d["decode_s"] for d in direct_runs]),
            "runs": direct_runs,
        },
        "pipeline": {
            "wall_s": spread([p["wall_s"] for p in pipe_runs]),
            "audio_per_wall": spread([p["audio_per_wall"] for p in pipe_runs]),
            "worker_cpu_s": spread([p["worker_cpu_s"] for p in pipe_runs]),
            "failed": sum(p["failed"] for p in pipe_runs),
            "runs": [{k: v for k, v in p.items() if k != "tasks"} for p in pipe_runs],
        },
        "overhead": {
            "tasks": len(overheads),
            "p50_ms": median(overheads) * 1000,
            "p99_ms": percentile(overheads, 99) * 1000,
            "max_ms": max(overheads, default=0.0) * 1000,
            "stage_p50_ms": {k: median(v) * 1000 for k, v in stage_samples.items()},
            "latency_clips": sorted({c.name for c in latency_clips}),
            "direct_asr_s": direct_asr,
        },
        "latency": {
            "idle_tasks": len(to_start),
            "to_start_p50_ms": median(to_start) * 1000,
            "to_start_p99_ms": percentile(to_start, 99) * 1000,
            "checks_p50_ms": median(checks) * 1000,
            "gaps": len(gaps),
            "gap_p50_ms": median(gaps) * 1000,
            "gap_max_ms": max(gaps, default=0.0) * 1000,
        },
        "worker_memory": {"idle": worker_idle, "after_load": worker_load},
        "profile": prof,
    }
