"""Consumer lag of ``audio.submitted`` on this worker, as a Prometheus gauge.

Lag of a partition = its highwater (the offset the next produced record gets) minus the
group's committed offset (the next record this worker has not finished), so records taken
but still being transcribed count as lag until their batch is committed. Before the group
has committed anything on a partition, the partition's earliest offset stands in for the
committed one. Each worker reports only the partitions assigned to it; the group's lag is
the sum over workers (``sum(medvoice_consumer_lag_messages)``).
"""

import asyncio
import logging
from collections.abc import Mapping

import faust
from faust.types import TP
from prometheus_client import Gauge

log = logging.getLogger(__name__)
LAG_INTERVAL_S = 5.0  # a few samples per 15 s scrape interval; each refresh is one offsets request
LAG_TIMEOUT_S = 5.0  # a broker that cannot list offsets in this time is reported by Kafka alerts

CONSUMER_LAG = Gauge(
    "medvoice_consumer_lag_messages",
    "Records of audio.submitted not yet committed by this worker, per assigned partition.",
    ["partition"],
)


def partition_lag(
    highwaters: Mapping[TP, int | None],
    committed: Mapping[TP, int | None],
    earliest: Mapping[TP, int],
) -> dict[int, int]:
    """Lag per partition number from highwater, committed and earliest offsets.

    Args:
        highwaters: The next offset to be produced, per partition (None: unknown).
        committed: The group's committed offset (next to process), None when none yet.
        earliest: The first available offset, used where nothing is committed.

    Returns:
        The lag (never negative) of each partition whose highwater is known.
    """
    lag: dict[int, int] = {}
    for tp, high in highwaters.items():
        if high is None:
            continue
        done = committed.get(tp)
        if done is None:
            done = earliest.get(tp, 0)
        lag[tp.partition] = max(0, high - done)
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
        consumer = self.app.consumer
        tps = sorted(tp for tp in consumer.assignment() if tp.topic == self.topic)
        lag: dict[int, int] = {}
        if tps:
            # Faust's own record of what it committed (or found committed on assignment);
            # not in ConsumerT's interface, but every Faust consumer has it.
            offsets: Mapping[TP, int | None] = getattr(consumer, "_committed_offset", {})
            committed = {tp: offsets.get(tp) for tp in tps}
            missing = [tp for tp in tps if committed[tp] is None]
            async with asyncio.timeout(LAG_TIMEOUT_S):
                highwaters = await consumer.highwaters(*tps)
                earliest = await consumer.earliest_offsets(*missing) if missing else {}
            lag = partition_lag(highwaters, committed, earliest)
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
