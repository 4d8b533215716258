"""The retry schedule of a delivery: doubling from the base, capped, upper half jittered."""

import pytest

from processors.webhooks.backoff import backoff_s, next_wait_s


def test_each_wait_doubles_until_the_cap() -> None:
    lows = [backoff_s(n, base_s=1.0, cap_s=300.0, rand=0.0) for n in range(1, 12)]
    highs = [backoff_s(n, base_s=1.0, cap_s=300.0, rand=0.999999) for n in range(1, 12)]
    assert lows == [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 150, 150]
    assert [round(h) for h in highs] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


def test_the_jitter_stays_in_the_upper_half() -> None:
    waits = [backoff_s(4, base_s=1.0, cap_s=300.0) for _ in range(200)]
    assert all(4.0 <= w <= 8.0 for w in waits)
    assert len(set(waits)) > 100  # random, not one value for every delivery


def test_a_very_late_attempt_does_not_overflow() -> None:
    assert backoff_s(5000, base_s=1.0, cap_s=300.0, rand=0.0) == 150.0


def test_the_delivery_is_given_up_once_the_next_attempt_would_pass_the_limit() -> None:
    assert next_wait_s(1, elapsed_s=0.0, base_s=1.0, cap_s=300.0, max_retry_s=10.0) is not None
    assert next_wait_s(3, elapsed_s=9.0, base_s=1.0, cap_s=300.0, max_retry_s=10.0) is None


def test_failures_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_s(0, 1.0, 300.0)
