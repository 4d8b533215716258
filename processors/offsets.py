"""Committed offsets that only pass finished work, and re-reading what Faust did not deliver.

Faust 0.15 can lose the record at a partition's committed position across a rebalance: the
SIGKILL test caught the surviving worker resuming a partition one record past its committed
offset, and Faust's own commit then moved past the record nobody had handled (its head-gap
check lets exactly one unacked record through, faust-streaming issue 606). This guard keeps
its own account per partition of the work topics:

- the commit point is the first offset this worker has not finished: every record below it
  was handled to a final status, a retry or a dead letter. Faust's commit for these
  partitions is replaced by it, so nothing unfinished is ever committed past;
- the next offset it expects to be handed; a record beyond it means Faust skipped some, and
  the partition is sought back to re-read them (the ones read twice are duplicates, which
  the pipeline recognises). The expected offset stays where it is until the skipped record
  arrives, and every later record handed over before it seeks back again: Faust's fetch
  loop sets its read position after each record of the batch it is iterating, so records
  of that batch still on their way would otherwise overwrite the seek, Faust would drop
  the re-read records as already read and, on a partition with nothing newer, nothing
  would ever reveal the gap again (a SIGKILL run at 32 tasks in flight stalled so);
- after each assignment, once Faust has sought its partitions, every guarded partition is
  sought to its committed offset again: a record at the committed position that Faust
  skips is otherwise only read again when a later record arrives, and a task cut short by
  a rebalance on an idle partition would wait for the next one.
"""

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import faust
from faust.types import TP

log = logging.getLogger(__name__)
# The private parts of Faust's consumer the guard relies on (faust-streaming 0.15):
# ``_new_offset(tp)`` proposes each commit, ``_committed_offset`` maps TP to the last commit.
PRIVATE_METHOD = "_new_offset"
PRIVATE_OFFSETS = "_committed_offset"


class IncompatibleFaust(RuntimeError):
    """The consumer lacks the private parts the guard replaces: the worker must not start."""


def check_consumer(consumer: Any) -> None:
    """Fail unless ``consumer`` has what :class:`OffsetGuard` hooks, as the guard uses it.

    Raises:
        IncompatibleFaust: a part is missing or has another shape.
    """
    method = getattr(type(consumer), PRIVATE_METHOD, None)
    if not callable(method) or list(inspect.signature(method).parameters) != ["self", "tp"]:
        raise IncompatibleFaust(
            f"{type(consumer).__qualname__}.{PRIVATE_METHOD}(self, tp) is gone: this Faust "
            "version commits differently and the offset guard cannot take over its commits"
        )
    if not callable(getattr(consumer, "perform_seek", None)):
        raise IncompatibleFaust(f"{type(consumer).__qualname__}.perform_seek is gone")
    offsets = getattr(consumer, PRIVATE_OFFSETS, None)
    if offsets is None or not callable(getattr(offsets, "get", None)):
        raise IncompatibleFaust(
            f"{type(consumer).__qualname__}.{PRIVATE_OFFSETS} is gone: the offset guard "
            "cannot tell where an assigned partition was committed"
        )


class _Partition:
    """What the guard knows of one assigned partition."""

    def __init__(self, base: int) -> None:
        self.mark = base  # every offset below is finished: what may be committed
        self.expected = base  # the next offset the stream should hand over
        self.finished: set[int] = set()  # finished offsets above ``mark``
        self.sought: int | None = None  # where a re-read was sought to, until it arrives


class OffsetGuard:
    """Guards the committed offsets of ``topics`` in ``app``'s consumer."""

    def __init__(self, app: faust.App, topics: Iterable[str]) -> None:
        """Bind to ``app``; :meth:`install` then hooks its consumer (once, before it runs)."""
        self.app = app
        self.topics = frozenset(topics)
        self._parts: dict[TP, _Partition] = {}

    def install(self) -> None:
        """Take over the consumer's commit offsets for the guarded topics.

        Raises:
            IncompatibleFaust: the consumer lacks what is replaced (checked at start-up).
        """
        consumer: Any = self.app.consumer
        check_consumer(consumer)
        # Faust's private commit hook: the only one on what is committed (checked just above).
        faust_offset: Callable[[TP], int | None] = consumer._new_offset  # noqa: SLF001

        def new_offset(tp: TP) -> int | None:
            proposed = faust_offset(tp)  # also lets Faust clear its list of acked offsets
            if tp.topic not in self.topics:
                return proposed
            return self.commit_offset(tp)

        consumer._new_offset = new_offset  # noqa: SLF001 - Faust's private hook, checked above
        faust_seek: Callable[[], Awaitable[None]] = consumer.perform_seek

        async def perform_seek() -> None:
            await faust_seek()
            await self.rewind()

        consumer.perform_seek = perform_seek
        # mode types handlers as a union of two callable types, which mypy cannot match
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    async def _on_revoked(self, sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Sent (with the revoked set) after Faust waited for in-flight records and
        # committed: start afresh on the next assignment, from the committed offsets.
        revoked: set[TP] = args[0] if args else kwargs.get("revoked", set())
        self.forget(revoked)

    async def rewind(self) -> None:
        """Seek each assigned guarded partition to its committed offset (0: the earliest)."""
        consumer: Any = self.app.consumer
        for tp in consumer.assignment():
            if tp.topic in self.topics:
                # Faust's private record of the last commit of tp (checked by install).
                committed = consumer._committed_offset.get(tp)  # noqa: SLF001
                await consumer.seek(tp, int(committed or 0))

    def forget(self, tps: Iterable[TP]) -> None:
        """Drop what is known of ``tps`` (they were revoked)."""
        for tp in tps:
            self._parts.pop(tp, None)

    def commit_offset(self, tp: TP) -> int | None:
        """The offset that may be committed for ``tp``, or None when nothing is known."""
        part = self._parts.get(tp)
        return None if part is None else part.mark

    async def started(self, tp: TP, offset: int) -> None:
        """Note that the stream handed over ``offset``; re-read any records it skipped."""
        if tp.topic not in self.topics:
            return
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = _Partition(await self._position(tp, offset))
        if offset > part.expected and part.sought != part.expected:
            await self._skip_expired(tp, part)
        if offset > part.expected:
            if part.sought != part.expected:  # once per gap; the seeks after it are quiet
                log.warning(
                    "records not delivered by the stream; reading them again",
                    extra={
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "from_offset": part.expected,
                        "to_offset": offset,
                    },
                )
            part.sought = part.expected
            await self.app.consumer.seek(tp, part.expected)
            return  # ``expected`` stays until the skipped record is handed over
        if offset == part.expected:
            part.sought = None
        part.expected = max(part.expected, offset + 1)

    def finished(self, tp: TP, offset: int) -> None:
        """Note that the record at ``offset`` has reached its outcome."""
        part = self._parts.get(tp)
        if part is None or offset < part.mark:
            return
        part.finished.add(offset)
        while part.mark in part.finished:
            part.finished.discard(part.mark)
            part.mark += 1

    async def _skip_expired(self, tp: TP, part: _Partition) -> None:
        """Move past records that retention deleted before they were read (else: seek loop)."""
        earliest = int((await self.app.consumer.earliest_offsets(tp)).get(tp, 0))
        if earliest > part.expected:
            log.error(
                "records expired before this worker read them",
                extra={"topic": tp.topic, "partition": tp.partition, "to_offset": earliest},
            )
            # Everything finished is below ``expected``, so below ``earliest``: start over there.
            part.mark = part.expected = earliest
            part.finished.clear()

    async def _position(self, tp: TP, first_seen: int) -> int:
        """Where this assignment of ``tp`` starts: its committed offset, else 0.

        Without a commit the partition is read from its earliest record (:meth:`rewind`
        seeks to 0); records below ``first_seen`` are then checked against retention.
        """
        del first_seen
        # Faust's private record of the offset last committed for tp (checked by install).
        consumer: Any = self.app.consumer
        return int(consumer._committed_offset.get(tp) or 0)  # noqa: SLF001
