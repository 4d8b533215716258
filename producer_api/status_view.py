"""The API's view of task status, materialised from the compacted ``task.status`` topic.

Every API replica reads the whole topic from the beginning at start-up and then follows
it, so reads are right after any worker or API restart. Transcript text is not kept here
(it lives in S3); a task costs a few hundred bytes of memory.
"""

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from medvoice_common.kafka import aiokafka_security_kwargs, partitions_of
from medvoice_common.settings import CommonSettings
from schemas.events import TaskStatusChanged

log = logging.getLogger(__name__)


def newer(current: TaskStatusChanged | None, change: TaskStatusChanged) -> bool:
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
        self._tasks: dict[str, TaskStatusChanged] = {}
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="medvoice-api-status-view",
            **aiokafka_security_kwargs(settings.kafka_security),
        )
        self._runner: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        self._end: dict[TopicPartition, int] = {}

    def get(self, task_id: str) -> TaskStatusChanged | None:
        """The latest status of ``task_id``, or None when unknown."""
        return self._tasks.get(task_id)

    def apply(self, change: TaskStatusChanged) -> None:
        """Merge one status change (also used for the API's own writes)."""
        key = str(change.task_id)
        if newer(self._tasks.get(key), change):
            self._tasks[key] = change

    @property
    def caught_up(self) -> bool:
        """Whether the view has read what the topic held at start-up."""
        return self._caught_up.is_set()

    async def start(self, timeout_s: float) -> None:
        """Assign every partition, read from the beginning, and wait to catch up."""
        await self._consumer.start()
        partitions = await partitions_of(self.settings, self.topic)
        tps = [TopicPartition(self.topic, p) for p in partitions]
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
                        self.apply(TaskStatusChanged.model_validate_json(record.value or b""))
                    except ValidationError:
                        log.warning(
                            "unreadable record on the status topic",
                            extra={"partition": record.partition, "offset": record.offset},
                        )
            if not self._caught_up.is_set():
                await self._check_caught_up()

    async def _check_caught_up(self) -> None:
        for tp, end in self._end.items():
            if await self._consumer.position(tp) < end:
                return
        self._caught_up.set()
