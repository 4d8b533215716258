"""The Grafana dashboard: parses, uses the provisioned data source, queries real metrics."""

from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import processors.lag
import processors.metrics
import producer_api.metrics
from tests.fixtures.observability import (
    as_promql,
    dashboard,
    dashboard_panels,
    dashboard_queries,
    metric_names,
    promtool,
    series_names,
)

EXPORTERS = (processors.metrics, processors.lag, producer_api.metrics)
# What SREs asked to see: each must be queried by some panel.
REQUIRED = {
    "medvoice_tasks_completed_total",  # throughput
    "medvoice_stage_duration_seconds_bucket",  # latency percentiles per stage
    "medvoice_tasks_failed_total",  # errors by code
    "medvoice_http_requests_total",  # API status classes
    "medvoice_consumer_lag_messages",  # lag
    "medvoice_asr_real_time_factor_bucket",  # RTF
    "medvoice_tasks_in_flight",  # in-flight
}


def test_every_panel_uses_the_provisioned_datasource() -> None:
    dash = dashboard()
    assert dash["uid"] and dash["title"]
    for panel in dashboard_panels(dash):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus", panel["title"]


def test_dashboard_queries_read_exported_metrics_only() -> None:
    exported = series_names((f.name, f.type) for f in REGISTRY.collect())
    used: set[str] = set()
    for expr in dashboard_queries(dashboard()):
        used |= metric_names(expr)
    assert used <= exported, f"unknown series {used - exported}"
    assert used >= REQUIRED, f"not shown: {REQUIRED - used}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool has no offline query parser; recording rules are parsed by `check rules`.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": as_promql(expr)}
                    for i, expr in enumerate(dashboard_queries(dashboard()))
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
