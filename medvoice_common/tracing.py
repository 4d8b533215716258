"""W3C trace context for events, through the OpenTelemetry API.

Only ``opentelemetry-api`` is needed: without an SDK nothing is recorded or exported, but
every AudioSubmitted still carries a valid ``traceparent`` header (the caller's, or a fresh
one) that the worker copies onto its TranscriptReady, so one id follows a dictation through
the logs and topics. Installing and configuring an OpenTelemetry SDK (and, say, the FastAPI
instrumentation) makes the current span the parent instead; no code change is needed.
"""

import secrets

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()


def format_traceparent(span_context: trace.SpanContext) -> str:
    """The W3C ``traceparent`` value (version 00) of ``span_context``."""
    trace_id = trace.format_trace_id(span_context.trace_id)
    span_id = trace.format_span_id(span_context.span_id)
    return f"00-{trace_id}-{span_id}-{span_context.trace_flags:02x}"


def parse(traceparent: str | None) -> trace.SpanContext | None:
    """The span context of a ``traceparent`` value, or None when it is absent or invalid."""
    if not traceparent:
        return None
    ctx = _PROPAGATOR.extract({TRACEPARENT: traceparent})
    span_context = trace.get_current_span(ctx).get_span_context()
    return span_context if span_context.is_valid else None


def fresh_traceparent() -> str:
    """A new valid ``traceparent``: random trace and span ids, sampled flag set."""
    span_context = trace.SpanContext(
        trace_id=secrets.randbits(128) or 1,  # all-zero ids are invalid
        span_id=secrets.randbits(64) or 1,
        is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return format_traceparent(span_context)


def event_traceparent(incoming: str | None) -> str:
    """The ``traceparent`` to put on an event published while handling a request.

    Args:
        incoming: The request's ``traceparent`` header, if any (invalid values are ignored).

    Returns:
        The current OpenTelemetry span's context when one is active (an SDK is installed),
        else the incoming value when it is valid, else a fresh one.
    """
    current = trace.get_current_span().get_span_context()
    if current.is_valid:
        return format_traceparent(current)
    parsed = parse(incoming)
    return format_traceparent(parsed) if parsed is not None else fresh_traceparent()
