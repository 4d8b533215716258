"""Retry and dead-letter headers, and the backoff schedule."""

import pytest

from processors.records import (
    ORIGIN_OFFSET,
    ORIGIN_TOPIC,
    REPLAY,
    TRACEPARENT,
    backoff_s,
    carried_headers,
    header_dict,
    header_int,
    origin_headers,
    origin_of,
)


@pytest.mark.parametrize(
    ("attempt", "low", "high"), [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (9, 30.0, 60.0)]
)
def test_backoff_doubles_with_jitter_and_a_cap(attempt: int, low: float, high: float) -> None:
    delays = [backoff_s(attempt, 1.0, 60.0) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert max(delays) - min(delays) > (high - low) / 4, "jitter spreads the retries"


def test_origin_survives_retries() -> None:
    first = origin_of({}, "audio.submitted", 3, 41)
    headers = header_dict(list(origin_headers(first).items()))
    assert origin_of(headers, "audio.submitted.retry", 0, 7) == first
    assert headers[ORIGIN_TOPIC] == b"audio.submitted" and headers[ORIGIN_OFFSET] == b"41"


def test_only_trace_context_and_replay_are_carried() -> None:
    headers = {TRACEPARENT: b"00-abc", REPLAY: b"2", "medvoice.attempt": b"4", "x": b"y"}
    assert carried_headers(headers) == {TRACEPARENT: b"00-abc", REPLAY: b"2"}


def test_malformed_integers_fall_back() -> None:
    assert header_int({"n": b"x1"}, "n", 5) == 5
    assert header_int({}, "n", 0) == 0
    assert header_int({"n": b"3"}, "n", 0) == 3
