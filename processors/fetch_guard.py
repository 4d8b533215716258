"""Putting back records that Faust's fetcher drops while its flow is stopped.

Faust 0.15 asks its consumer thread for records and waits up to a second for them. When a
rebalance stops the flow while that request is in flight, the records it returns are thrown
away (``Consumer.getmany``: "getmany called while flow not active") although aiokafka has
already moved each partition's position past them. Faust only seeks the stream partitions
back to their commits then; nothing seeks a table's changelog partition back. So when the
table recovery of the new assignment had already sought a changelog partition (to replay it
from the start) and the in-flight fetch returned the replayed records before the recovery
resumed the flow, those records were never seen by anyone: the recovery waited for them
forever ("No event received for active tp" on every changelog partition), and the worker
processed nothing until it was restarted. The SIGKILL test at 32 tasks in flight stalled
so in about one run in ten.

This guard wraps the fetch: records that come back while the flow is stopped are put back,
each partition sought to its first returned offset unless its position is already lower
(a seek made after those records were fetched wins), and nothing is returned. What is put
back is read again once the flow resumes; a record read twice is a duplicate that Faust's
read offsets, the table's replay and the pipeline all tolerate, a record skipped is not.
"""

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka.errors import IllegalStateError

from processors.offsets import IncompatibleFaust

log = logging.getLogger(__name__)
# Faust 0.15's private parts used here: the consumer's ``_getmany(active_partitions,
# timeout)`` (the fetch, awaited on the main thread) and ``_thread`` (the consumer thread,
# whose ``call_thread`` runs a coroutine function on the thread that owns aiokafka).
PRIVATE_FETCH = "_getmany"
PRIVATE_THREAD = "_thread"
Records = Mapping[Any, Sequence[Any]]  # aiokafka's records by partition


def check_consumer(consumer: Any) -> None:
    """Fail unless ``consumer`` has what :func:`install` wraps, as it uses it.

    Raises:
        IncompatibleFaust: a part is missing or has another shape.
    """
    fetch = getattr(type(consumer), PRIVATE_FETCH, None)
    params = list(inspect.signature(fetch).parameters) if callable(fetch) else []
    if params != ["self", "active_partitions", "timeout"]:
        raise IncompatibleFaust(
            f"{type(consumer).__qualname__}.{PRIVATE_FETCH}(self, active_partitions, timeout) "
            "is gone: this Faust version fetches differently and records fetched during a "
            "rebalance cannot be put back"
        )
    if not isinstance(getattr(consumer, "flow_active", None), bool):
        raise IncompatibleFaust(f"{type(consumer).__qualname__}.flow_active is gone")
    thread = getattr(consumer, PRIVATE_THREAD, None)
    for name in ("call_thread", "_ensure_consumer"):
        if not callable(getattr(thread, name, None)):
            raise IncompatibleFaust(f"Faust's consumer thread has no {name}")


def install(consumer: Any) -> None:
    """Wrap ``consumer``'s fetch so that no record fetched while the flow is stopped is lost.

    Raises:
        IncompatibleFaust: the consumer lacks what is wrapped (checked at start-up).
    """
    check_consumer(consumer)
    # Faust's private fetch and consumer thread (checked just above).
    fetch: Callable[[Any, float], Awaitable[Records]] = consumer._getmany  # noqa: SLF001
    thread: Any = consumer._thread  # noqa: SLF001 - Faust's consumer thread, checked above

    # The parameter names are Faust's: its fetcher calls this with them.
    async def getmany(active_partitions: Any, timeout: float) -> Records:  # noqa: ASYNC109
        records = await fetch(active_partitions, timeout)
        if not records or consumer.flow_active:
            return records
        firsts = {tp: recs[0].offset for tp, recs in records.items() if recs}
        await thread.call_thread(_put_back, thread, firsts)
        return {}

    consumer._getmany = getmany  # noqa: SLF001 - Faust's private fetch, checked above


async def _put_back(thread: Any, firsts: Mapping[Any, int]) -> None:
    """On the consumer thread: seek each partition back to ``firsts`` (never forward)."""
    kafka = thread._ensure_consumer()  # noqa: SLF001 - Faust's consumer thread, checked
    assigned = kafka.assignment()
    for tp, first in firsts.items():
        if tp not in assigned:
            continue  # revoked: its next owner reads from the commit
        try:
            position = await kafka.position(tp)
        except IllegalStateError:
            continue  # revoked while the position was read: nothing to put back
        if position > first:
            kafka.seek(tp, first)
            log.info(
                "records fetched while the flow was stopped put back",
                extra={"topic": tp.topic, "partition": tp.partition, "from_offset": first},
            )
