"""The deliverer: reads ``task.status``, POSTs each final status to its receivers, signed.

- Its own consumer group (``MEDVOICE_WEBHOOKS__GROUP_ID``); a new group starts at the end of
  the topic (the compacted topic holds every task's last status: no flood of old ones).
- Up to ``MAX_IN_FLIGHT`` statuses are delivered at once; the next record is read only when
  a slot is free (meanwhile the consumer polls with its partitions paused, so the group keeps
  it). A delivery retries with backoff (:mod:`processors.webhooks.backoff`) for up
  to ``MAX_RETRY_S``, then is given up.
- Offsets are committed once every record before them is delivered or given up (per
  partition, the first unfinished offset): at-least-once. A receiver dedupes by
  ``webhook-id``.
- Tombstones (erased tasks), statuses that are not final, and records that are not a
  TaskStatusChanged are passed over.
- A submission's ``callback_url`` travels in its own task's status records (the worker copies
  it from that task's AudioSubmitted): a status is only ever delivered to the callback its own
  task was submitted with, and the allow-list is checked again here.
"""

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from medvoice_common.webhook_settings import WebhookOptions
from medvoice_common.webhook_signature import secret_bytes, sign
from medvoice_common.webhook_url import CallbackRefused, parse_callback
from processors.webhooks import metrics
from processors.webhooks.backoff import next_wait_s
from processors.webhooks.payload import payload
from processors.webhooks.sender import Sender
from schemas.events import TaskStatusChanged

log = logging.getLogger(__name__)
COMMIT_INTERVAL_S = 1.0
IDLE_POLL_MS = 1000  # while every slot is taken: a poll of paused partitions this often


@dataclass(frozen=True)
class Target:
    """One receiver of one status."""

    kind: metrics.Target
    url: str


def targets(change: TaskStatusChanged, options: WebhookOptions) -> list[Target]:
    """Where a status goes: the deployment URL, and the task's own callback if allowed."""
    if not change.status.is_final:
        return []
    found = [Target("deployment", options.url)] if options.url else []
    if change.callback_url:
        try:
            parse_callback(change.callback_url, options.hosts)
        except CallbackRefused as exc:
            log.warning(
                "callback refused at delivery",
                extra={"task_id": str(change.task_id), "reason": str(exc)},
            )
            metrics.DELIVERIES.labels("callback", "given_up").inc()
            metrics.FAILURES.labels("callback", "refused_address").inc()
        else:
            found.append(Target("callback", change.callback_url))
    return found


@dataclass
class _Partition:
    """Offsets of one partition: the records still being delivered, and the next to read."""

    next_offset: int
    pending: set[int] = field(default_factory=set)
    tasks: set["asyncio.Task[None]"] = field(default_factory=set)
    committed: int = -1

    def commit_point(self) -> int:
        return min(self.pending) if self.pending else self.next_offset


class Deliverer:
    """Consumes ``task.status`` and delivers final statuses; see the module's docstring."""

    def __init__(self, options: WebhookOptions, consumer: AIOKafkaConsumer, sender: Sender) -> None:
        """``consumer``: not subscribed yet, auto-commit off; ``sender``: started."""
        if options.secret is None:
            raise ValueError("MEDVOICE_WEBHOOKS__SECRET is needed to sign deliveries")
        self.options = options
        self.consumer = consumer
        self.sender = sender
        self._key = secret_bytes(options.secret.get_secret_value())
        self._slots = asyncio.Semaphore(options.max_in_flight)
        self._partitions: dict[TopicPartition, _Partition] = {}
        self.assigned = asyncio.Event()

    # -- the loop -------------------------------------------------------------------------

    def subscribe(self, topic: str) -> None:
        """Join the group on ``topic``, tracking partitions as they come and go."""
        self.consumer.subscribe([topic], listener=_Listener(self))

    async def run(self) -> None:
        """Read and deliver until cancelled; commits in the background."""
        committer = asyncio.create_task(self._commit_periodically())
        try:
            while True:
                await self._take_slot()
                try:
                    record = await self.consumer.getone()
                except BaseException:
                    self._slots.release()
                    raise
                self._take(record)
        finally:
            committer.cancel()
            await self._stop_all()

    async def _take_slot(self) -> None:
        """Take a delivery slot. While none is free, keep polling with every partition paused:
        a consumer that does not poll for ``max_poll_interval_ms`` (5 min) is taken for stuck
        and leaves the group, which would cancel the deliveries holding the slots."""
        while self._slots.locked():
            self.consumer.pause(*self.consumer.assignment())
            got = await self.consumer.getmany(timeout_ms=IDLE_POLL_MS)
            for tp, records in got.items():  # assigned meanwhile, not paused: read it later
                self.consumer.seek(tp, records[0].offset)
        paused = self.consumer.paused()
        if paused:
            self.consumer.resume(*paused)
        await self._slots.acquire()

    def _take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        tp = TopicPartition(record.topic, record.partition)
        part = self._partitions.get(tp)
        if part is None:  # revoked while the record was fetched
            self._slots.release()
            return
        part.next_offset = max(part.next_offset, record.offset + 1)
        work = self._work(record)
        if not work:
            self._slots.release()
            return
        change, bound = work
        part.pending.add(record.offset)
        metrics.IN_FLIGHT.inc()
        task = asyncio.create_task(self._deliver_all(change, bound))
        part.tasks.add(task)

        def finished(t: "asyncio.Task[None]") -> None:
            part.pending.discard(record.offset)
            part.tasks.discard(t)
            metrics.IN_FLIGHT.dec()
            self._slots.release()

        task.add_done_callback(finished)

    def _work(
        self, record: ConsumerRecord[bytes, bytes]
    ) -> tuple[TaskStatusChanged, list[Target]] | None:
        if record.value is None:  # a tombstone: the task was erased
            return None
        try:
            change = TaskStatusChanged.model_validate_json(record.value)
        except ValidationError:
            log.warning(
                "record on task.status is not a TaskStatusChanged; passed over",
                extra={"partition": record.partition, "offset": record.offset},
            )
            return None
        found = targets(change, self.options)
        return (change, found) if found else None

    # -- one status -----------------------------------------------------------------------

    async def _deliver_all(self, change: TaskStatusChanged, found: Iterable[Target]) -> None:
        body = payload(change)
        await asyncio.gather(*(self.deliver(change, t, body) for t in found))

    async def deliver(self, change: TaskStatusChanged, target: Target, body: bytes) -> bool:
        """Deliver ``body`` to ``target`` until it is accepted or given up; True if accepted."""
        first = time.monotonic()
        failures = 0
        extra = {"task_id": str(change.task_id), "target": target.kind}
        while True:
            headers = sign(self._key, str(change.event_id), body)  # a fresh timestamp each try
            attempt = await self.sender.post(target.kind, target.url, headers, body)
            if attempt.delivered:
                metrics.DELIVERIES.labels(target.kind, "delivered").inc()
                log.info("webhook delivered", extra={**extra, "attempts": failures + 1})
                return True
            failures += 1
            reason = attempt.reason or "other"
            metrics.FAILURES.labels(target.kind, reason).inc()
            wait = None
            if attempt.retry:
                o = self.options
                wait = next_wait_s(
                    failures,
                    time.monotonic() - first,
                    o.retry_base_s,
                    o.retry_max_backoff_s,
                    o.max_retry_s,
                )
            details = {**extra, "reason": reason, "http_status": attempt.http_status}
            if wait is None:
                metrics.DELIVERIES.labels(target.kind, "given_up").inc()
                log.warning("webhook given up", extra={**details, "attempts": failures})
                return False
            metrics.DELIVERIES.labels(target.kind, "retried").inc()
            log.info("webhook attempt failed; retrying", extra={**details, "wait_s": wait})
            await asyncio.sleep(wait)

    # -- offsets --------------------------------------------------------------------------

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(COMMIT_INTERVAL_S)
            await self.commit()

    async def commit(self, only: Iterable[TopicPartition] | None = None) -> None:
        """Commit, per partition, the first offset not yet delivered or given up."""
        chosen = set(self._partitions) if only is None else set(only) & set(self._partitions)
        offsets = {}
        for tp in chosen:
            part = self._partitions[tp]
            point = part.commit_point()
            if point != part.committed:
                offsets[tp] = point
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:  # a rebalance: the next owner re-reads
            log.warning("offset commit failed", extra={"error": type(exc).__name__})
            return
        for tp, point in offsets.items():
            if tp in self._partitions:
                self._partitions[tp].committed = point

    async def assigned_partitions(self, assigned: set[TopicPartition]) -> None:
        """Start tracking ``assigned`` from the consumer's positions (committed or the end)."""
        for tp in assigned:
            position = await self.consumer.position(tp)
            self._partitions[tp] = _Partition(next_offset=position)
        await self.commit(assigned)  # a new group's starting point survives a restart
        self.assigned.set()

    async def revoked_partitions(self, revoked: set[TopicPartition]) -> None:
        """Commit what is done, then stop the deliveries of ``revoked`` (their next owner
        delivers them again: at-least-once)."""
        await self.commit(revoked)
        stopping = [t for tp in revoked for t in self._partitions.get(tp, _Partition(0)).tasks]
        for tp in revoked:
            self._partitions.pop(tp, None)
        for task in stopping:
            task.cancel()
        await asyncio.gather(*stopping, return_exceptions=True)
        if not self._partitions:
            self.assigned.clear()

    async def _stop_all(self) -> None:
        await self.revoked_partitions(set(self._partitions))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, deliverer: Deliverer) -> None:
        self.deliverer = deliverer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.deliverer.revoked_partitions(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.deliverer.assigned_partitions(set(assigned))
