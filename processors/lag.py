"""Consumer lag of ``audio.submitted`` on this worker, as a Prometheus gauge.

Lag of a partition = its highwater (the offset the next produced record gets) minus the
group's committed offset (the next record this worker has not finished), so records taken
but still being transcribed count as lag until they are committed. Before the group has
committed anything on a partition, lag counts from offset 0, where the offset guard starts
such a partition too. Each worker reports only the partitions assigned to it; the group's
lag is the sum over workers (``sum(medvoice_consumer_lag_messages)``).

Both figures are read locally, without a request: the highwater from the consumer's last
fetch response, the commit from Faust's own record. A request would go through Faust's
consumer thread, queued behind its seeks: after a crash that thread was seen hung in a
seek, and every tick queued one more request behind it.
"""

import logging
from collections.abc import Mapping
from typing import Any

import faust
from faust.types import TP
from prometheus_client import Gauge

log = logging.getLogger(__name__)
LAG_INTERVAL_S = 5.0  # a few samples per 15 s scrape interval

CONSUMER_LAG = Gauge(
    "medvoice_consumer_lag_messages",
    "Records of audio.submitted not yet committed by this worker, per assigned partition.",
    ["partition"],
)


def partition_lag(
    highwaters: Mapping[TP, int | None], committed: Mapping[TP, int | None]
) -> dict[int, int]:
    """Lag per partition number from highwater and committed offsets.

    Args:
        highwaters: The next offset to be produced, per partition (None: not fetched yet).
        committed: The group's committed offset (next to process), None when none yet.

    Returns:
        The lag (never negative) of each partition whose highwater is known.
    """
    lag: dict[int, int] = {}
    for tp, high in highwaters.items():
        if high is None:
            continue
        lag[tp.partition] = max(0, high - (committed.get(tp) or 0))
    return lag


class ConsumerLag:
    """Refreshes :data:`CONSUMER_LAG` from a Faust app's consumer."""

    def __init__(self, app: faust.App, topic: str) -> None:
        """Report the lag of ``topic``'s partitions assigned to ``app``'s consumer."""
        self.app = app
        self.topic = topic
        self._reported: set[int] = set()

    async def refresh(self) -> None:
        """Recompute the gauge; partitions no longer assigned are removed from it."""
        consumer: Any = self.app.consumer
        tps = sorted(tp for tp in consumer.assignment() if tp.topic == self.topic)
        # Faust's private record of each partition's commit; OffsetGuard.install checks at
        # start-up that it exists (the guard relies on it too).
        offsets: Mapping[TP, int | None] = consumer._committed_offset  # noqa: SLF001
        highwaters = {tp: consumer.highwater(tp) for tp in tps}  # last fetch: no request
        lag = partition_lag(highwaters, {tp: offsets.get(tp) for tp in tps})
        for partition, value in lag.items():
            CONSUMER_LAG.labels(str(partition)).set(value)
        for gone in self._reported - lag.keys():
            CONSUMER_LAG.remove(str(gone))
        self._reported = set(lag)

    async def refresh_quietly(self) -> None:
        """:meth:`refresh`, logging (not raising) a failure: a timer must keep running."""
        try:
            await self.refresh()
        except Exception:  # any failure only leaves the gauge stale until the next tick
            log.warning("consumer lag not refreshed", exc_info=True)


def register_lag(app: faust.App, topic: str) -> ConsumerLag:
    """Refresh the lag of ``topic`` every :data:`LAG_INTERVAL_S` while ``app`` runs."""
    lag = ConsumerLag(app, topic)
    app.timer(LAG_INTERVAL_S, name="consumer_lag")(lag.refresh_quietly)
    return lag
