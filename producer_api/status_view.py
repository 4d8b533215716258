"""The API's view of task status, materialised from the compacted ``task.status`` topic.

Each API replica keeps its view in a local RocksDB store (:mod:`producer_api.status_store`)
with the topic offsets stored beside the data in the same atomic batches: a restart on the
same directory resumes from where it stopped; an empty directory rebuilds from the topic's
beginning. Memory is bounded by the store's settings, not by the number of tasks.

Readiness: :attr:`StatusView.caught_up` turns true once the view has read what the topic
held when it started (``/readyz`` answers "catching up" with the records still to read
until then; the log and ``medvoice_status_view_records_behind`` show progress).

Read-your-writes across replicas: a replica that does not know a task id yet reads up to
the topic's end offsets of that moment (:meth:`StatusView.sync`) before saying "not found",
so a task answered by another replica is found here as soon as its id was returned.

A task's owner never changes: a record naming another user for a known task is ignored
(counted in ``medvoice_status_owner_conflicts_total``, logged with the task id only).

A null record (a tombstone: an erase, or the end of the task's retention) removes the task.

Change notification (for streams of one task's changes): :meth:`StatusView.next_change`.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from medvoice_common.kafka import aiokafka_security_kwargs, partitions_of
from medvoice_common.settings import CommonSettings
from producer_api import metrics
from producer_api.status_store import IndexEntry, StatusStore, StoredTask, micros
from schemas.events import TaskStatusChanged
from schemas.status import TaskStatus

log = logging.getLogger(__name__)
PROGRESS_LOG_S = 5.0  # how often catching up is logged
# Records applied between two turns of the event loop. A fetch can hold thousands (a
# catch-up, or a busy cluster's statuses after a 500 ms wait), and applying them in one go
# held every request behind them; 64 take 1-2 ms to apply (about 22 us each, measured).
APPLY_SLICE = 64
OWN_WRITES_MAX = 10_000  # own writes awaiting their read-back (each ~0.5 KB); more: parsed

RECORDS_BEHIND = Gauge(
    "medvoice_status_view_records_behind",
    "Records of task.status this replica has still to read before it is caught up.",
)
RECORDS_READ = Counter(
    "medvoice_status_view_records_read_total", "Records of task.status read by the status view."
)
TASKS_REMOVED = Counter(
    "medvoice_status_view_tombstones_total", "Tasks removed from the view by a tombstone."
)


class Ordered(Protocol):
    """What ordering two status changes of one task needs (a change, or a view entry)."""

    @property
    def status(self) -> TaskStatus:
        """The status the change sets."""

    @property
    def replay(self) -> int:
        """Its replay generation."""

    @property
    def attempt(self) -> int:
        """Its attempt."""

    @property
    def occurred_at(self) -> datetime:
        """When it happened."""


def newer(current: Ordered | None, change: Ordered) -> bool:
    """Whether ``change`` should replace ``current``: a task never moves backwards."""
    if current is None:
        return True
    if change.replay != current.replay:
        return change.replay > current.replay  # an operator's replay starts the task afresh
    if change.status.rank != current.status.rank:
        return change.status.rank > current.status.rank
    if current.status.is_final:
        return False  # the first final status wins; a duplicate cannot change the result
    return (change.attempt, change.occurred_at) >= (current.attempt, current.occurred_at)


class Progress(NamedTuple):
    """How far the view is in reading what the topic held at its start."""

    caught_up: bool
    records_behind: int


class StatusView:
    """Latest status per task_id, fed by a group-less consumer of ``task.status``."""

    def __init__(self, settings: CommonSettings, store: StatusStore) -> None:
        """Configure the consumer over ``store``; nothing connects until ``start``."""
        self.settings = settings
        self.topic = settings.topics.status
        self.store = store
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="medvoice-api-status-view",
            **aiokafka_security_kwargs(settings.kafka.security),
        )
        self._runner: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self._end: dict[TopicPartition, int] = {}
        self._behind = 0
        self._partitions: list[TopicPartition] = []
        self._progress = asyncio.Condition()  # notified after every fetch of the runner
        self._ends: tuple[float, asyncio.Task[dict[TopicPartition, int]]] | None = None
        self._watchers: dict[uuid.UUID, set[asyncio.Future[None]]] = {}
        # This replica's own writes (Kafka key -> value), applied when Kafka acknowledged
        # them, until the consumer reads them back: that record is then already applied.
        self._own: dict[bytes, bytes] = {}

    # --- reads ----------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskStatusChanged | None:
        """The latest status of ``task_id``, or None when unknown (or not a UUID)."""
        try:
            key = uuid.UUID(task_id)
        except ValueError:
            return None
        entry = self.store.get(key)
        return None if entry is None else TaskStatusChanged.model_validate_json(entry.raw)

    def user_tasks(self, user_id: str, after: bytes | None) -> Iterator[IndexEntry]:
        """The user's tasks from the per-user index, newest first, after cursor ``after``."""
        return self.store.user_tasks(user_id, after)

    def records(self, task_ids: list[uuid.UUID]) -> list[TaskStatusChanged | None]:
        """The latest records of several tasks (one multi-get)."""
        return [
            None if e is None else TaskStatusChanged.model_validate_json(e.raw)
            for e in self.store.get_many(task_ids)
        ]

    def expired(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Tasks whose retention ended before ``now`` (soonest first, ``limit`` at most)."""
        return self.store.expired(now, limit)

    async def next_change(
        self, task_id: str, after_event_id: str | None
    ) -> TaskStatusChanged | None:
        """The task's record once its event_id is not ``after_event_id``.

        Returns at once when the current record already differs (or ``after_event_id`` is
        None); otherwise waits, without limit, until this replica's view of the task changes.
        None: the task is unknown here or was removed (erased or expired). Callers bound the
        wait themselves (``asyncio.timeout``), e.g. to send keep-alives, and call again; no
        change is lost between calls: each call compares with the current record.
        """
        try:
            key = uuid.UUID(task_id)
        except ValueError:
            return None
        while True:
            current = self.get(task_id)
            if current is None or after_event_id is None or str(current.event_id) != after_event_id:
                return current
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._watchers.setdefault(key, set()).add(waiter)
            try:
                await waiter
            finally:
                waiters = self._watchers.get(key)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._watchers[key]

    def _notify(self, key: uuid.UUID) -> None:
        for waiter in self._watchers.get(key, ()):
            if not waiter.done():
                waiter.set_result(None)

    # --- writes ---------------------------------------------------------------------------

    def apply(
        self,
        change: TaskStatusChanged,
        raw: bytes | None = None,
        offset: tuple[int, int] | None = None,
    ) -> None:
        """Merge one status change (also used for the API's own writes).

        Args:
            change: the parsed change.
            raw: its JSON as read from the topic; serialised from ``change`` when omitted.
            offset: (partition, next offset) of the record, stored with the change.
        """
        key = change.task_id
        current = self.store.get(key)
        if current is not None and current.user_id != change.user_id:
            metrics.STATUS_OWNER_CONFLICTS.inc()
            log.warning("status record for another owner ignored", extra={"task_id": str(key)})
        elif newer(current, change):
            new = StoredTask(
                change.status,
                change.replay,
                change.attempt,
                change.occurred_at,
                micros(change.submitted_at),
                change.user_id,
                raw if raw is not None else change.to_bytes(),
            )
            self.store.write(key, current, new, offset)
            self._notify(key)
            return
        if offset is not None:
            self.store.record_offset(*offset)

    def apply_own(self, change: TaskStatusChanged, raw: bytes) -> None:
        """Apply a change this replica published and Kafka acknowledged (``raw``: its value).

        When the consumer reads the same record back it only advances the offset: applying
        it again would change nothing (the record is in this view already, and a later
        status of the task can only follow it in its partition).
        """
        self.apply(change, raw)
        if len(self._own) >= OWN_WRITES_MAX:  # the consumer is far behind: forget the oldest
            del self._own[next(iter(self._own))]
        self._own[str(change.task_id).encode()] = raw

    def remove(self, task_id: uuid.UUID, offset: tuple[int, int] | None = None) -> None:
        """Apply a tombstone: the task is gone from this view (and its indexes)."""
        current = self.store.get(task_id)
        if current is not None:
            self.store.write(task_id, current, None, offset)
            TASKS_REMOVED.inc()
            self._notify(task_id)
        elif offset is not None:
            self.store.record_offset(*offset)

    # --- following the topic --------------------------------------------------------------

    async def sync(self, timeout_s: float) -> bool:
        """Read up to the topic's end offsets as of now (read-your-writes across replicas).

        Returns:
            Whether the view got there within ``timeout_s`` (False: it serves what it has).
        """
        asked = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                ends = await self._ends_after(asked)
                async with self._progress:
                    while not await self._reached(ends):
                        await self._progress.wait()
        except (TimeoutError, KafkaError):
            return False
        return True

    async def _ends_after(self, asked: float) -> dict[TopicPartition, int]:
        """End offsets read after ``asked``: concurrent callers share one broker request."""
        if self._ends is None or self._ends[0] < asked:
            request = self._consumer.end_offsets(self._partitions)
            self._ends = (time.monotonic(), asyncio.ensure_future(request))
        return await asyncio.shield(self._ends[1])

    async def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await self._consumer.position(tp) < end:
                return False
        return True

    @property
    def caught_up(self) -> bool:
        """Whether the view has read what the topic held at start-up."""
        return self._caught_up.is_set()

    @property
    def progress(self) -> Progress:
        """Caught up or not, and how many records it still had to read at its last fetch."""
        return Progress(self.caught_up, 0 if self.caught_up else self._behind)

    async def start(self) -> None:
        """Resume from the stored offsets (or the beginning) and follow the topic.

        Returns at once: reading up to the end offsets of this moment goes on in the
        background, and :attr:`caught_up` tells when it is done. No start-up timeout.
        """
        await self._consumer.start()
        partitions = await partitions_of(self.settings, self.topic)
        tps = [TopicPartition(self.topic, p) for p in partitions]
        self._partitions = tps
        self._consumer.assign(tps)
        ends = await self._consumer.end_offsets(tps)
        starts = await self._consumer.beginning_offsets(tps)
        stored = self._stored_offsets(starts, ends)
        for tp in tps:
            if tp.partition in stored:
                self._consumer.seek(tp, stored[tp.partition])
            else:
                await self._consumer.seek_to_beginning(tp)
        self._end = dict(ends)
        self._behind = sum(
            max(0, end - stored.get(tp.partition, starts[tp])) for tp, end in ends.items()
        )
        RECORDS_BEHIND.set(self._behind)
        log.info(
            "status view starting",
            extra={"resumed": bool(stored), "records_behind": self._behind},
        )
        if await self._reached(self._end):
            self._caught_up.set()
        self._runner = asyncio.create_task(self._run(), name="status-view")

    def _stored_offsets(
        self, starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]
    ) -> dict[int, int]:
        """The store's offsets, if they fit the topic; otherwise the store is wiped."""
        stored = self.store.offsets()
        fits = self.store.meta("topic") == self.topic and all(
            starts[tp] <= stored[tp.partition] <= ends[tp] for tp in ends if tp.partition in stored
        )
        if stored and not fits:  # the topic was recreated or truncated: rebuild
            log.warning("status store does not match the topic; rebuilding it")
            self.store.wipe()
            stored = {}
        self.store.set_meta("topic", self.topic)
        return stored

    async def stop(self) -> None:
        """Stop following the topic and close the store."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._consumer.stop()
        self.store.close()

    async def _run(self) -> None:
        logged = time.monotonic()
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=APPLY_SLICE)
            for records in batches.values():
                for record in records:
                    self._apply_record(record)
                RECORDS_READ.inc(len(records))
            # getmany returns buffered records without suspending: let requests run.
            await asyncio.sleep(0)
            if not self._caught_up.is_set():
                await self._check_caught_up()
                if time.monotonic() - logged >= PROGRESS_LOG_S and not self._caught_up.is_set():
                    logged = time.monotonic()
                    log.info("status view catching up", extra={"records_behind": self._behind})
            async with self._progress:
                self._progress.notify_all()

    def _apply_record(self, record: "ConsumerRecord[bytes, bytes]") -> None:
        offset = (record.partition, record.offset + 1)
        if self._own and record.key is not None and record.value is not None:
            if self._own.pop(record.key, None) == record.value:
                self.store.record_offset(*offset)  # this replica's own write, applied
                return
        try:
            if record.value is None:
                self.remove(uuid.UUID((record.key or b"").decode()), offset)
                return
            raw = record.value
            self.apply(TaskStatusChanged.model_validate_json(raw), raw, offset)
        except (ValidationError, ValueError):
            log.warning(
                "unreadable record on the status topic",
                extra={"partition": record.partition, "offset": record.offset},
            )
            self.store.record_offset(*offset)

    async def _check_caught_up(self) -> None:
        behind = 0
        for tp, end in self._end.items():
            behind += max(0, end - await self._consumer.position(tp))
        self._behind = behind
        RECORDS_BEHIND.set(behind)
        if behind == 0:
            self._caught_up.set()
            log.info("status view caught up")
