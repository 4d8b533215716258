"""A real Prometheus scraping a real API and worker while they transcribe a few dictations.

Also: ``promtool check metrics`` on both endpoints, the dashboard's and alerts' metric names
against what the processes export, patient data absent from the INFO logs, and the W3C
trace context carried from the HTTP request onto AudioSubmitted and TranscriptReady.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from medvoice_common import tracing
from processors.webhooks import metrics as webhook_metrics
from tests.fixtures.audio import spoken_clip
from tests.fixtures.observability import (
    PrometheusServer,
    alert_rules,
    dashboard,
    dashboard_queries,
    exposition_names,
    metric_names,
    promtool,
)
from tests.fixtures.processes import ManagedProcess
from tests.fixtures.stack import (
    StackConfig,
    is_final,
    read_topic,
    start_api,
    start_worker,
    values,
    wait_for_status,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

USER = "dr_obs-01"
SENTENCE = "The patient reports chest pain since yesterday evening and has no fever."
# Markers of patient data: a file name, and a word whisper tiny.en transcribes reliably from
# espeak-ng speech ("xylophone" comes out as "microphone"; "kangaroo" survives).
FILE_MARKER = "zebra-marker-7731"
WORD_MARKER = "kangaroo"
MARKER_SENTENCE = f"The patient keeps a pet {WORD_MARKER} and reports no pain."
INCOMING_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
SCRAPE_WAIT_S = 60.0  # 1 s scrapes; the lag gauge refreshes every 5 s and commits every 1 s


@dataclass
class Deployment:
    """One API, one worker and a Prometheus scraping both."""

    cfg: StackConfig
    api: ManagedProcess
    api_url: str
    worker: ManagedProcess
    worker_url: str
    prometheus: PrometheusServer
    client: httpx.Client
    tasks: dict[str, str] = field(default_factory=dict)  # name -> task_id
    baseline_completed: float = 0.0


@pytest.fixture(scope="module")
def deployment(
    kafka_broker: Any, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    # The same isolated deployment the `stack_config` fixture makes, for the whole module.
    cfg = StackConfig(kafka_broker.bootstrap, s3_endpoint, tmp_path_factory.mktemp("obs"))
    started: list[ManagedProcess] = []
    try:
        worker, worker_url = start_worker(cfg)
        started.append(worker)
        api, api_url = start_api(cfg)
        started.append(api)
        prometheus = PrometheusServer(
            tmp_path_factory.mktemp("prometheus"),
            {
                "medvoice-api": api_url.removeprefix("http://"),
                "medvoice-worker": worker_url.removeprefix("http://"),
            },
        )
        started.append(prometheus.start())
        client = cfg.client(api_url)
        yield Deployment(cfg, api, api_url, worker, worker_url, prometheus, client)
        client.close()
    finally:
        for proc in reversed(started):
            proc.terminate()


def _submit(dep: Deployment, clip: bytes, file_name: str, traceparent: str | None) -> str:
    resp = dep.client.post(
        f"/uploads/{USER}",
        files={"file": (file_name, clip, "application/octet-stream")},
    )
    assert resp.status_code == 201, resp.text
    headers = {"traceparent": traceparent} if traceparent else {}
    resp = dep.client.post(
        f"/process_audio_v2/{USER}",
        params={"file_id": resp.json()["file_id"], "file_name": file_name},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["task_id"])


@pytest.fixture(scope="module")
def workload(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """Three dictations through the pipeline, once Prometheus has seen both targets."""
    prom = deployment.prometheus
    prom.wait_for('sum(up{job=~"medvoice-(api|worker)"})', lambda v: v == 2, SCRAPE_WAIT_S)
    prom.wait_for("count(medvoice_events_published_total)", lambda v: v == 1, SCRAPE_WAIT_S)
    # the worker's counters exist at zero before its first task, so increase() sees it
    prom.wait_for("count(medvoice_tasks_completed_total)", lambda v: v == 1, SCRAPE_WAIT_S)
    deployment.baseline_completed = prom.scalar("sum(medvoice_tasks_completed_total)") or 0.0
    work: Path = tmp_path_factory.mktemp("clips")
    plain = spoken_clip(SENTENCE, "m4a", work)
    marked = spoken_clip(MARKER_SENTENCE, "m4a", work)
    deployment.tasks = {
        "traced": _submit(deployment, plain, "dictation.m4a", INCOMING_TRACEPARENT),
        "marker": _submit(deployment, marked, f"{FILE_MARKER}.m4a", None),
        "plain": _submit(deployment, plain, "dictation.m4a", "not-a-traceparent"),
    }
    for task_id in deployment.tasks.values():
        final = wait_for_status(deployment.client, task_id, is_final)
        assert final["status"] == "completed", final
    return deployment


def test_prometheus_sees_counters_histograms_and_gauges_move(workload: Deployment) -> None:
    prom = workload.prometheus
    n = len(workload.tasks)
    expected = workload.baseline_completed + n
    prom.wait_for("sum(medvoice_tasks_completed_total)", lambda v: v == expected, SCRAPE_WAIT_S)
    at_least = {
        "sum(medvoice_events_published_total)": n,
        'sum(medvoice_tasks_started_total{backend="whisper"})': n,
        'sum(medvoice_stage_duration_seconds_count{stage="asr"})': n,
        'sum(medvoice_stage_duration_seconds_count{stage="decode"})': n,
        'sum(medvoice_task_end_to_end_seconds_count{outcome="completed"})': n,
        "sum(medvoice_asr_real_time_factor_count)": n,
        "sum(medvoice_publish_duration_seconds_count)": n,
        'sum(medvoice_http_requests_total{route="/process_audio_v2/{user_id}",'
        'status_class="2xx"})': n,
        'sum(medvoice_http_request_duration_seconds_count{route="/uploads/{user_id}"})': n,
    }
    for expr, minimum in at_least.items():
        prom.wait_for(expr, lambda v, m=minimum: v is not None and v >= m, SCRAPE_WAIT_S)
    assert (prom.scalar("sum(medvoice_audio_transcribed_seconds_total)") or 0) > 0
    assert prom.scalar("sum(medvoice_publish_failures_total)") == 0
    assert prom.scalar("sum(medvoice_tasks_in_flight)") == 0
    assert prom.scalar('min(medvoice_asr_backend_up{backend="whisper"})') == 1
    p95 = prom.scalar(
        "histogram_quantile(0.95, sum by (le) (rate(medvoice_stage_duration_seconds_bucket"
        '{stage="asr"}[5m])))'
    )
    assert p95 is not None and p95 > 0


def test_consumer_lag_gauge_covers_every_partition_and_drains(workload: Deployment) -> None:
    prom = workload.prometheus
    parts = workload.cfg.partitions
    prom.wait_for("count(medvoice_consumer_lag_messages)", lambda v: v == parts, SCRAPE_WAIT_S)
    # Every task is final, so the group commits past all of them and the lag drains to zero.
    prom.wait_for("sum(medvoice_consumer_lag_messages)", lambda v: v == 0, SCRAPE_WAIT_S)


def test_prometheus_loads_and_evaluates_the_alert_rules(workload: Deployment) -> None:
    expected = {rule["alert"] for rule in alert_rules()}
    groups = workload.prometheus.api("rules", type="alert")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == expected
    for name, rule in loaded.items():
        assert rule["health"] != "err", (name, rule.get("lastError"))
        if name in ("MedVoiceNoCompletions", "MedVoiceAsrBackendDown"):
            assert rule["state"] == "inactive", rule  # the pipeline works


def _scrape(url: str) -> str:
    resp = httpx.get(f"{url}/metrics", timeout=10.0)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return resp.text


def test_promtool_check_metrics_passes_on_both_endpoints(workload: Deployment) -> None:
    for url in (workload.api_url, workload.worker_url):
        body = _scrape(url)
        assert "medvoice_" in body
        result = promtool("check", "metrics", stdin=body)
        assert result.returncode == 0, f"{url}: {result.stdout}{result.stderr}"
        assert not result.stdout.strip(), f"{url}: lint findings:\n{result.stdout}"


def _webhook_deliverer_names() -> set[str]:
    """What the webhook deliverer's /metrics exposes, from its own metrics module (the
    deliverer runs in tests/integration/webhooks, which scrapes it; not in this workload)."""
    webhook_metrics.initialise()  # its series at zero, as the deliverer does at start-up
    names = exposition_names(generate_latest().decode())
    return {name for name in names if name.startswith("medvoice_webhook")}


def test_dashboard_and_alerts_query_only_exported_metrics(workload: Deployment) -> None:
    exported = exposition_names(_scrape(workload.api_url))
    exported |= exposition_names(_scrape(workload.worker_url))
    exported |= _webhook_deliverer_names()
    used: set[str] = set()
    for expr in dashboard_queries(dashboard()):
        used |= metric_names(expr)
    for rule in alert_rules():
        used |= metric_names(rule["expr"])
    assert used, "no medvoice_ metric found in the dashboard or alerts"
    assert used <= exported, f"queried but not exported: {sorted(used - exported)}"


def _lines_above_debug(text: str) -> list[str]:
    """Every log line except JSON records at DEBUG (non-JSON output counts as above)."""
    kept = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            kept.append(line)
            continue
        if not (isinstance(record, dict) and record.get("level") == "DEBUG"):
            kept.append(line)
    return kept


async def test_no_file_name_or_transcript_in_info_logs(workload: Deployment) -> None:
    task_id = workload.tasks["marker"]
    body = workload.client.get(f"/tasks/{task_id}").json()
    assert WORD_MARKER in body["transcript"]["text"].lower(), body  # the marker was spoken
    submitted = await read_topic(
        workload.cfg.bootstrap,
        workload.cfg.topic("audio.submitted"),
        lambda recs: any(v["task_id"] == task_id for v in values(recs)),
    )
    event = next(v for v in values(submitted) if v["task_id"] == task_id)
    assert event["file_name"] == f"{FILE_MARKER}.m4a"  # the file name went through the pipeline
    for proc in (workload.api, workload.worker):
        lines = _lines_above_debug(proc.log_text())
        assert lines, f"{proc.name} logged nothing"
        for marker in (FILE_MARKER, WORD_MARKER):
            leaked = [line for line in lines if marker in line.lower()]
            assert not leaked, f"{proc.name} logged patient data:\n" + "\n".join(leaked)
    worker_log = [
        json.loads(x) for x in _lines_above_debug(workload.worker.log_text()) if x.startswith("{")
    ]
    transcribed = [r for r in worker_log if r.get("msg") == "transcribed"]
    assert any(r.get("task_id") == task_id and r.get("stages") for r in transcribed)


def _traceparents(records: list[Any]) -> dict[str, str]:
    """task_id -> the traceparent header of each record."""
    found = {}
    for record in records:
        headers = {key: value.decode() for key, value in record.headers or ()}
        found[json.loads(record.value)["task_id"]] = headers.get("traceparent", "")
    return found


async def test_trace_context_follows_each_task(workload: Deployment) -> None:
    ids = workload.tasks
    wanted = set(ids.values())

    def has_all(recs: list[Any]) -> bool:
        return wanted <= {v["task_id"] for v in values(recs)}

    cfg = workload.cfg
    submitted = _traceparents(
        await read_topic(cfg.bootstrap, cfg.topic("audio.submitted"), has_all)
    )
    ready = _traceparents(await read_topic(cfg.bootstrap, cfg.topic("transcript.ready"), has_all))
    assert submitted[ids["traced"]] == INCOMING_TRACEPARENT
    for name in ("marker", "plain"):  # none, or an invalid one: a fresh valid context
        value = submitted[ids[name]]
        parsed = tracing.parse(value)
        assert parsed is not None, (name, value)
        assert tracing.format_traceparent(parsed) == value
    assert len({submitted[t] for t in wanted}) == len(wanted)
    for task_id in wanted:
        assert ready[task_id] == submitted[task_id]
