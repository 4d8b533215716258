"""Generate the Kubernetes PrometheusRule from the Prometheus alert rules.

``deploy/prometheus/alerts.yml`` is the one source of the alert rules (docker-compose's
Prometheus loads it as is); ``k8s/base/monitoring/prometheusrule.yaml`` carries the same
groups for the Prometheus Operator. Run ``python -m tools.prometheusrule`` after editing the
rules; ``--check`` exits 1 when the committed PrometheusRule differs (a unit test does too).
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_RULE = ROOT / "k8s" / "base" / "monitoring" / "prometheusrule.yaml"
HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by `python -m tools.prometheusrule`: do not edit.
# The MedVoice alert rules for the Prometheus Operator (monitoring.coreos.com/v1). If your
# Prometheus selects rules by a label (kube-prometheus-stack: release=<name>), add it in an
# overlay, as for the ServiceMonitors.
"""


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL, descriptions) as ``|`` blocks, as a person would write."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def render(alerts: dict[str, Any]) -> str:
    """The PrometheusRule manifest holding ``alerts``' rule groups."""
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "medvoice-alerts"},
        "spec": {"groups": alerts["groups"]},
    }
    body = yaml.dump(manifest, Dumper=_BlockDumper, sort_keys=False, width=100)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) the PrometheusRule; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args(argv)
    expected = render(yaml.safe_load(ALERTS.read_text(encoding="utf-8")))
    if args.check:
        current = PROMETHEUS_RULE.read_text(encoding="utf-8") if PROMETHEUS_RULE.exists() else ""
        if current != expected:
            sys.stderr.write(f"{PROMETHEUS_RULE} is stale: run python -m tools.prometheusrule\n")
            return 1
        return 0
    PROMETHEUS_RULE.write_text(expected, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
