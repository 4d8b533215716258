"""W3C trace context on events (medvoice_common.tracing)."""

import re

import pytest
from opentelemetry import trace

from medvoice_common import tracing

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACEPARENT_RE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def test_a_valid_incoming_traceparent_is_carried() -> None:
    assert tracing.event_traceparent(VALID) == VALID


@pytest.mark.parametrize(
    "incoming",
    [
        None,
        "",
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  # upper case
    ],
)
def test_without_a_valid_one_a_fresh_one_is_made(incoming: str | None) -> None:
    value = tracing.event_traceparent(incoming)
    assert TRACEPARENT_RE.match(value), value
    assert tracing.parse(value) is not None
    assert value.split("-")[1] != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_fresh_ones_differ() -> None:
    assert len({tracing.fresh_traceparent() for _ in range(50)}) == 50


def test_the_current_span_wins_when_an_sdk_made_one() -> None:
    ctx = trace.SpanContext(
        trace_id=0xABC, span_id=0xDEF, is_remote=False, trace_flags=trace.TraceFlags(1)
    )
    with trace.use_span(trace.NonRecordingSpan(ctx)):
        value = tracing.event_traceparent(VALID)
    assert value == f"00-{0xABC:032x}-{0xDEF:016x}-01"


def test_parse_reads_ids() -> None:
    parsed = tracing.parse(VALID)
    assert parsed is not None
    assert parsed.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert parsed.span_id == 0x00F067AA0BA902B7
    assert tracing.format_traceparent(parsed) == VALID
