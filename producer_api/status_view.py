"""The API's view of task status, materialised from the compacted ``task.status`` topic.

Every API replica reads the whole topic from the beginning at start-up and then follows
it, so reads are right after any worker or API restart. Transcript text is not kept here
(it lives in S3). Each task is kept as its record's JSON bytes plus the fields that order
changes and its owner, about 0.6 KB (a parsed model costs about 1.7 KB); it is parsed when
read.

Read-your-writes across replicas: a replica that does not know a task id yet reads up to
the topic's end offsets of that moment (:meth:`StatusView.sync`) before saying "not found",
so a task answered by another replica is found here as soon as its id was returned.

A task's owner never changes: a record naming another user for a known task is ignored
(counted in ``medvoice_status_owner_conflicts_total``, logged with the task id only).
"""

import asyncio
import contextlib
import logging
import sys
import time
from datetime import datetime
from typing import NamedTuple, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from medvoice_common.kafka import aiokafka_security_kwargs, partitions_of
from medvoice_common.settings import CommonSettings
from producer_api import metrics
from schemas.events import TaskStatusChanged
from schemas.status import TaskStatus

log = logging.getLogger(__name__)


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


class _Entry(NamedTuple):
    """One task in the view: its latest change, compactly."""

    status: TaskStatus
    """The change's status (an enum member: shared, not copied)."""
    replay: int
    """The change's replay generation."""
    attempt: int
    """The change's attempt."""
    occurred_at: datetime
    """When the change happened."""
    user_id: str
    """The task's owner (interned: one string per user, shared by their tasks)."""
    raw: bytes
    """The change as JSON, parsed on read."""


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


class StatusView:
    """Latest status per task_id, fed by a group-less consumer of ``task.status``."""

    def __init__(self, settings: CommonSettings) -> None:
        """Configure the consumer; nothing connects until ``start``."""
        self.settings = settings
        self.topic = settings.topics.status
        self._tasks: dict[str, _Entry] = {}
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
        self._partitions: list[TopicPartition] = []
        self._progress = asyncio.Condition()  # notified after every fetch of the runner
        self._ends: tuple[float, asyncio.Task[dict[TopicPartition, int]]] | None = None

    def get(self, task_id: str) -> TaskStatusChanged | None:
        """The latest status of ``task_id``, or None when unknown."""
        entry = self._tasks.get(task_id)
        return None if entry is None else TaskStatusChanged.model_validate_json(entry.raw)

    def apply(self, change: TaskStatusChanged, raw: bytes | None = None) -> None:
        """Merge one status change (also used for the API's own writes).

        Args:
            change: the parsed change.
            raw: its JSON as read from the topic; serialised from ``change`` when omitted.
        """
        key = str(change.task_id)
        current = self._tasks.get(key)
        if current is not None and current.user_id != change.user_id:
            metrics.STATUS_OWNER_CONFLICTS.inc()
            log.warning("status record for another owner ignored", extra={"task_id": key})
            return
        if newer(current, change):
            self._tasks[key] = _Entry(
                change.status,
                change.replay,
                change.attempt,
                change.occurred_at,
                sys.intern(change.user_id),
                raw if raw is not None else change.to_bytes(),
            )

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

    async def start(self, timeout_s: float) -> None:
        """Assign every partition, read from the beginning, and wait to catch up."""
        await self._consumer.start()
        partitions = await partitions_of(self.settings, self.topic)
        tps = [TopicPartition(self.topic, p) for p in partitions]
        self._partitions = tps
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._end = {tp: off for tp, off in (await self._consumer.end_offsets(tps)).items() if off}
        if not self._end:
            self._caught_up.set()
        self._runner = asyncio.create_task(self._run(), name="status-view")
        try:
            await asyncio.wait_for(self._caught_up.wait(), timeout_s)
        except TimeoutError:
            log.warning("status view still catching up; serving what it has")

    async def stop(self) -> None:
        """Stop following the topic."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        raw = record.value or b""
                        self.apply(TaskStatusChanged.model_validate_json(raw), raw)
                    except ValidationError:
                        log.warning(
                            "unreadable record on the status topic",
                            extra={"partition": record.partition, "offset": record.offset},
                        )
            if not self._caught_up.is_set():
                await self._check_caught_up()
            async with self._progress:
                self._progress.notify_all()

    async def _check_caught_up(self) -> None:
        for tp, end in self._end.items():
            if await self._consumer.position(tp) < end:
                return
        self._caught_up.set()
