"""Consumer lag from a Faust consumer's offsets (processors.lag)."""

from typing import Any

from faust.types import TP
from prometheus_client import REGISTRY

from processors.lag import ConsumerLag, partition_lag

TOPIC = "t.audio.submitted"


def lag_of(partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "medvoice_consumer_lag_messages", {"partition": str(partition)}
    )


class FakeConsumer:
    """The parts of a Faust consumer the lag reads: local state only, no request methods
    (the lag must not queue requests behind Faust's consumer thread)."""

    def __init__(self, highwaters: dict[TP, int | None], committed: dict[TP, int | None]) -> None:
        self.highs = highwaters
        self._committed_offset = committed

    def assignment(self) -> set[TP]:
        return set(self.highs)

    def highwater(self, tp: TP) -> int | None:
        return self.highs[tp]


class FakeApp:
    def __init__(self, consumer: FakeConsumer) -> None:
        self.consumer = consumer


def test_partition_lag() -> None:
    a, b, c, d = (TP(TOPIC, i) for i in range(4))
    lag = partition_lag({a: 10, b: 10, c: None, d: 5}, {a: 4, b: None, d: 9})
    assert lag == {0: 6, 1: 10, 3: 0}


async def test_refresh_sets_assigned_partitions_and_drops_revoked_ones() -> None:
    p0, p1, other = TP(TOPIC, 0), TP(TOPIC, 1), TP("t.audio.submitted.retry", 0)
    consumer = FakeConsumer({p0: 12, p1: 7, other: 100}, {p0: 10, p1: None})
    lag = ConsumerLag(FakeApp(consumer), TOPIC)  # type: ignore[arg-type]
    await lag.refresh()
    assert lag_of(0) == 2
    assert lag_of(1) == 7  # nothing committed: from offset 0

    del consumer.highs[p1]  # rebalanced away
    consumer.highs[p0] = 20
    await lag.refresh()
    assert lag_of(0) == 10
    assert lag_of(1) is None


async def test_a_failing_consumer_leaves_the_gauge_and_does_not_raise() -> None:
    class Broken(FakeConsumer):
        def highwater(self, tp: TP) -> int | None:
            raise AssertionError("partition is not assigned")  # aiokafka, mid-rebalance

    app: Any = FakeApp(Broken({TP(TOPIC, 5): 1}, {}))
    await ConsumerLag(app, TOPIC).refresh_quietly()
    assert lag_of(5) is None
