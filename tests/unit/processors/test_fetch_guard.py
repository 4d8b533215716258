"""The fetch guard's start-up check on the real Faust consumer (what it does with records is
tested on the real broker: tests/integration/reliability/test_fetch_during_rebalance.py)."""

from typing import Any

import faust
import pytest

from processors import fetch_guard
from processors.offsets import IncompatibleFaust


def real_consumer() -> Any:
    app = faust.App(f"fetch-guard-{id(object())}", broker="kafka://127.0.0.1:1", autodiscover=False)
    return app.consumer


def test_the_guard_wraps_the_real_faust_consumers_fetch() -> None:
    consumer = real_consumer()
    faust_fetch = consumer._getmany
    fetch_guard.install(consumer)
    assert consumer._getmany != faust_fetch


def test_install_fails_at_start_up_when_faust_fetches_differently() -> None:
    consumer = real_consumer()

    class OtherRelease(type(consumer)):  # type: ignore[misc]
        async def _getmany(self, partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109
            return {}

    consumer.__class__ = OtherRelease
    with pytest.raises(IncompatibleFaust, match="_getmany"):
        fetch_guard.install(consumer)


def test_install_fails_at_start_up_without_the_consumer_thread() -> None:
    consumer = real_consumer()
    consumer._thread = object()
    with pytest.raises(IncompatibleFaust, match="call_thread"):
        fetch_guard.install(consumer)
