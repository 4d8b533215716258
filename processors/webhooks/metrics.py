"""The deliverer's Prometheus metrics (served on ``MEDVOICE_WEBHOOKS__WEB_PORT`` at ``/metrics``).

Closed label sets only: the target kind, the outcome, the reason. Never a URL (a callback's
query may hold a secret), a user, a task or a host.
"""

from typing import Literal, get_args

from prometheus_client import Counter, Gauge, Histogram

Target = Literal["callback", "deployment"]
Outcome = Literal["delivered", "retried", "given_up"]
# Why an attempt failed (retried) or a delivery was given up.
Reason = Literal[
    "refused_address", "connect", "timeout", "tls", "status_4xx", "status_5xx", "redirect", "other"
]

DELIVERIES = Counter(
    "medvoice_webhook_deliveries_total",
    "Webhook attempts by outcome: delivered (2xx), retried (failed, tried again later), "
    "given_up (failed for good).",
    ["target", "outcome"],
)
FAILURES = Counter(
    "medvoice_webhook_failures_total",
    "Failed webhook attempts by reason (each is also a retried or given_up delivery).",
    ["target", "reason"],
)
SECONDS = Histogram(
    "medvoice_webhook_attempt_duration_seconds",
    "One webhook attempt: connect, send, answer.",
    ["target"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_FLIGHT = Gauge("medvoice_webhooks_in_flight", "Statuses being delivered (or waiting to retry).")


def initialise() -> None:
    """Create every series at zero, so the first increase is seen by rate() and alerts."""
    for target in get_args(Target):
        SECONDS.labels(target)
        for outcome in get_args(Outcome):
            DELIVERIES.labels(target, outcome)
        for reason in get_args(Reason):
            FAILURES.labels(target, reason)
