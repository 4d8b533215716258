"""The worker's labelled counters exist at zero from start-up (processors.metrics)."""

from prometheus_client import REGISTRY

from processors import metrics
from processors.errors import ErrorCode

BACKEND = "initialise-test"


def test_initialise_creates_every_counter_series_at_zero() -> None:
    per_backend = (
        "medvoice_tasks_started_total",
        "medvoice_tasks_completed_total",
        "medvoice_audio_transcribed_seconds_total",
        "medvoice_asr_real_time_factor_count",
    )
    per_code = {
        "medvoice_tasks_failed_total": "code",
        "medvoice_task_retries_total": "code",
        "medvoice_dlq_records_total": "reason",
    }
    assert all(REGISTRY.get_sample_value(n, {"backend": BACKEND}) is None for n in per_backend)

    metrics.initialise(BACKEND)

    for name in per_backend:
        assert REGISTRY.get_sample_value(name, {"backend": BACKEND}) == 0.0, name
    for name, label in per_code.items():
        for code in ErrorCode:
            value = REGISTRY.get_sample_value(name, {label: code.value})
            assert value is not None, (name, code)
    for stage in ("download", "decode", "asr", "upload"):
        labels = {"stage": stage, "backend": BACKEND}
        assert REGISTRY.get_sample_value("medvoice_stage_duration_seconds_count", labels) == 0.0
