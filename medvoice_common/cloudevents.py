"""CloudEvents 1.0 Kafka protocol binding, binary mode: the ``ce_*`` headers of every event.

The JSON body stays what it is (the event's own fields); these headers beside it let a
consumer with a CloudEvents SDK read our records as CloudEvents without parsing the body.
Only ids, times and types go in headers: never patient data.
"""

from schemas.events import EventBase

SPEC_VERSION = "1.0"
CONTENT_TYPE = "content-type"
HEADER_DOC = {
    "ce_specversion": "CloudEvents spec version, 1.0",
    "ce_id": "the event's event_id",
    "ce_source": "the producing component, /medvoice/api or /medvoice/worker",
    "ce_type": "medvoice.<event_type>.v<schema_version>, e.g. medvoice.TranscriptReady.v1",
    "ce_time": "the event's occurred_at, RFC 3339",
    "ce_subject": "the task_id",
    CONTENT_TYPE: "application/json",
}
HEADERS = tuple(HEADER_DOC)
API_SOURCE = "/medvoice/api"
WORKER_SOURCE = "/medvoice/worker"


def event_type(event: EventBase) -> str:
    """The CloudEvents ``type`` of ``event``."""
    name = getattr(event, "event_type", type(event).__name__)
    return f"medvoice.{name}.v{event.schema_version}"


def headers(event: EventBase, source: str) -> dict[str, bytes]:
    """The binary-mode CloudEvents headers of ``event`` published by ``source``."""
    return {
        "ce_specversion": SPEC_VERSION.encode(),
        "ce_id": str(event.event_id).encode(),
        "ce_source": source.encode(),
        "ce_type": event_type(event).encode(),
        "ce_time": event.occurred_at.isoformat().encode(),
        "ce_subject": str(event.task_id).encode(),
        CONTENT_TYPE: b"application/json",
    }
