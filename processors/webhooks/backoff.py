"""When a failed delivery is tried again: exponential backoff, the upper half jittered."""

import random


def backoff_s(failures: int, base_s: float, cap_s: float, rand: float | None = None) -> float:
    """The wait after the ``failures``-th failed attempt (1, 2, ...).

    ``base_s * 2 ** (failures - 1)``, capped at ``cap_s``, then a uniformly random point of its
    upper half (``rand`` in [0, 1) picks it; tests pass it), so receivers coming back from an
    outage do not get every delivery at the same instant.
    """
    if failures < 1:
        raise ValueError("failures counts from 1")
    ceiling = min(cap_s, base_s * 2.0 ** min(failures - 1, 62))
    r = random.random() if rand is None else rand  # noqa: S311 - jitter, not a secret
    return ceiling / 2 + r * ceiling / 2


def next_wait_s(
    failures: int, elapsed_s: float, base_s: float, cap_s: float, max_retry_s: float
) -> float | None:
    """The wait before the next attempt, or None once the next one would start after
    ``max_retry_s`` from the first (the delivery is given up)."""
    wait = backoff_s(failures, base_s, cap_s)
    return wait if elapsed_s + wait <= max_retry_s else None
