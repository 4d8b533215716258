"""The API's Prometheus metrics. Labels are bounded: route template, method, status class."""

from prometheus_client import Counter, Gauge, Histogram

# The seed endpoint answers in milliseconds; uploads of large files take seconds.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

HTTP_REQUESTS = Counter(
    "medvoice_http_requests_total", "HTTP requests served.", ["route", "method", "status_class"]
)
HTTP_SECONDS = Histogram(
    "medvoice_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["route", "method"],
    buckets=HTTP_BUCKETS,
)
SUBMIT_FAST_PATH = Counter(
    "medvoice_api_submit_fast_path_total",
    "Submissions the fast path served, or left to FastAPI's route: declined (an invalid or "
    "unusual request) or traced (an OpenTelemetry SDK is configured).",
    ["outcome"],
)
EVENTS_PUBLISHED = Counter(
    "medvoice_events_published_total", "AudioSubmitted events acknowledged by Kafka."
)
PUBLISH_FAILURES = Counter(
    "medvoice_publish_failures_total", "Submissions Kafka did not acknowledge in time."
)
STATUS_OWNER_CONFLICTS = Counter(
    "medvoice_status_owner_conflicts_total",
    "Status records ignored because they name another owner than the task's.",
)
PUBLISH_SECONDS = Histogram(
    "medvoice_publish_duration_seconds",
    "Time for Kafka to acknowledge a submission (acks=all).",
    buckets=PUBLISH_BUCKETS,
)
SSE_STREAMS_OPEN = Gauge(
    "medvoice_sse_streams_open", "Task event streams (GET /tasks/{id}/events) open now."
)
SSE_STREAMS_REFUSED = Counter(
    "medvoice_sse_streams_refused_total",
    "Task event streams refused with 503: this replica had MEDVOICE_API__SSE_MAX_STREAMS open.",
)
SSE_STREAM_ENDS = ("final", "client", "removed", "shutdown", "error")
SSE_STREAMS_ENDED = Counter(
    "medvoice_sse_streams_ended_total",
    "Task event streams ended, by how: final (after completed or failed), client (it went "
    "away), removed (the task was erased or its transcript is gone), shutdown, error.",
    ["end"],
)
for _end in SSE_STREAM_ENDS:  # every series exported from the start, at 0
    SSE_STREAMS_ENDED.labels(_end)
SSE_MESSAGES = Counter("medvoice_sse_messages_total", "Status messages sent on task event streams.")
