"""The worker's Prometheus metrics (served on its web port at ``/metrics``).

Labels are bounded: stage, backend, error code, outcome. Never a user, task or file id.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, get_args

from prometheus_client import Counter, Gauge, Histogram

from processors.errors import ErrorCode

# Stages take from milliseconds (download of a small clip) to minutes (ASR of an hour).
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
# End to end includes queueing behind other tasks: up to an hour under a backlog.
E2E_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
Stage = Literal["download", "decode", "asr", "upload"]
Outcome = Literal["completed", "failed"]
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5)

TASKS_STARTED = Counter("medvoice_tasks_started_total", "Tasks taken for processing.", ["backend"])
TASKS_COMPLETED = Counter(
    "medvoice_tasks_completed_total", "Tasks that reached completed.", ["backend"]
)
TASKS_FAILED = Counter("medvoice_tasks_failed_total", "Tasks that reached failed.", ["code"])
TASKS_DUPLICATE = Counter(
    "medvoice_tasks_duplicate_total",
    "Redelivered events of final tasks, skipped or answered from the stored transcript.",
)
RETRIES = Counter("medvoice_task_retries_total", "Transient failures sent to retry.", ["code"])
DLQ_RECORDS = Counter(
    "medvoice_dlq_records_total", "Records written to the dead-letter topic.", ["reason"]
)
POISON = Counter("medvoice_poison_messages_total", "Records that were not a valid AudioSubmitted.")
STAGE_SECONDS = Histogram(
    "medvoice_stage_duration_seconds",
    "Time spent in each stage of a task.",
    ["stage", "backend"],
    buckets=STAGE_BUCKETS,
)
E2E_SECONDS = Histogram(
    "medvoice_task_end_to_end_seconds",
    "From submission at the API to the final status.",
    ["outcome"],
    buckets=E2E_BUCKETS,
)
AUDIO_SECONDS = Counter(
    "medvoice_audio_transcribed_seconds_total", "Seconds of audio transcribed.", ["backend"]
)
RTF = Histogram(
    "medvoice_asr_real_time_factor",
    "ASR wall time divided by audio duration (below 1 is faster than real time).",
    ["backend"],
    buckets=RTF_BUCKETS,
)
IN_FLIGHT = Gauge("medvoice_tasks_in_flight", "Tasks being processed by this worker now.")
BACKEND_UP = Gauge(
    "medvoice_asr_backend_up", "1 when the last ASR backend probe succeeded.", ["backend"]
)


def initialise(backend: str) -> None:
    """Create every labelled counter series at zero when the worker starts.

    Prometheus sees no increase in a series that first appears already at 1, so without
    this the alerts on completions and dead letters would miss the first ones, and rates
    of the histograms would start one scrape late.
    """
    for per_backend in (TASKS_STARTED, TASKS_COMPLETED, AUDIO_SECONDS, RTF):
        per_backend.labels(backend)
    for name in get_args(Stage):
        STAGE_SECONDS.labels(name, backend)
    for outcome in get_args(Outcome):
        E2E_SECONDS.labels(outcome)
    for code in ErrorCode:
        TASKS_FAILED.labels(code)
        RETRIES.labels(code)
        DLQ_RECORDS.labels(code)


@contextmanager
def stage(name: Stage, backend: str, timings: dict[str, float] | None = None) -> Iterator[None]:
    """Time the block as stage ``name``; also store its seconds in ``timings`` (for logs)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        STAGE_SECONDS.labels(name, backend).observe(elapsed)
        if timings is not None:
            timings[name] = round(elapsed, 3)


def observe_asr(backend: str, audio_s: float, wall_s: float) -> None:
    """Record one recognition: audio seconds and its real-time factor."""
    AUDIO_SECONDS.labels(backend).inc(audio_s)
    if audio_s > 0:
        RTF.labels(backend).observe(wall_s / audio_s)
