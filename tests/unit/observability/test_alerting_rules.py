"""The alert rules: valid for promtool, tested with promtool, and the same in Kubernetes."""

import yaml
from prometheus_client import REGISTRY

import processors.lag
import processors.metrics
import processors.webhooks.metrics
import producer_api.metrics
from tests.fixtures.observability import (
    ALERTS,
    ALERTS_TEST,
    PROMETHEUS_RULE,
    alert_rules,
    metric_names,
    promtool,
    series_names,
)
from tools import prometheusrule

# Imported for their registrations in the default registry.
EXPORTERS = (processors.metrics, processors.lag, producer_api.metrics, processors.webhooks.metrics)
EXPECTED_ALERTS = {
    "MedVoiceConsumerLagGrowing",
    "MedVoiceTaskFailureRatioHigh",
    "MedVoiceNoCompletions",
    "MedVoiceAsrBackendDown",
    "MedVoicePublishFailures",
}


def exported() -> set[str]:
    """Every series name the API and worker registries can expose."""
    return series_names((f.name, f.type) for f in REGISTRY.collect())


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_issue_s_alerts_exist_with_severity_and_summary() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) >= EXPECTED_ALERTS
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name


def test_alerts_read_only_exported_metrics() -> None:
    names = exported()
    for rule in alert_rules():
        used = metric_names(rule["expr"])
        assert used <= names, f"{rule['alert']} reads unknown series {used - names}"


def test_prometheusrule_is_generated_from_the_alerts() -> None:
    alerts = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    manifest = yaml.safe_load(PROMETHEUS_RULE.read_text(encoding="utf-8"))
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["spec"]["groups"] == alerts["groups"]
    assert PROMETHEUS_RULE.read_text(encoding="utf-8") == prometheusrule.render(alerts), (
        "stale: run python -m tools.prometheusrule"
    )
    assert prometheusrule.main(["--check"]) == 0


def test_kustomization_includes_the_prometheusrule() -> None:
    kustomization = yaml.safe_load(
        (PROMETHEUS_RULE.parents[1] / "kustomization.yaml").read_text(encoding="utf-8")
    )
    assert "monitoring/prometheusrule.yaml" in kustomization["resources"]
