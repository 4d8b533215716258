"""The Faust application: topics, the task-status table, the agents and the web routes."""

from typing import Any, cast

import faust
from faust.types import FutureMessage

from processors.agents import TaskProcessor
from processors.faust_config import app_settings
from processors.health import Readiness, register_routes
from processors.lag import register_lag
from processors.lifecycle import HardExit, Liveness
from processors.offsets import OffsetGuard
from processors.pipeline import PipelineContext

STATUS_TABLE = "task_status"


class StatusTable(faust.Table[str, Any]):
    """The task-status table; a write can be awaited until its changelog record is acked.

    ``producer.flush()`` is not enough: Faust's buffer hands a record to the producer in a
    task of its own, and a flush in between sees neither (a SIGKILL test lost the count).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Create the table (same arguments as ``faust.Table``)."""
        super().__init__(*args, **kwargs)
        self._writes: dict[Any, FutureMessage] = {}

    def send_changelog(
        self, partition: int | None, key: Any, value: Any, *args: Any, **kwargs: Any
    ) -> FutureMessage:
        """Send a modification to the changelog, remembering it per key."""
        fut = super().send_changelog(partition, key, value, *args, **kwargs)
        self._writes[key] = fut
        fut.add_done_callback(lambda done: self._forget(key, done))
        return fut

    def _forget(self, key: Any, done: Any) -> None:
        if self._writes.get(key) is done:  # acknowledged: nothing left to wait for
            del self._writes[key]

    async def written(self, key: str) -> None:
        """Wait until the last write of ``key`` is on the broker (acks=all)."""
        fut = self._writes.get(key)
        if fut is not None:
            await fut


class WorkerApp(faust.App):
    """The Faust app, telling the processor when a rebalance or the shutdown begins.

    Both then wait for the events taken to be acked (``stream_wait_empty``); the processor
    bounds that wait (its in-flight work gets half the grace period, then is cancelled).
    """

    processor: TaskProcessor | None = None

    def on_rebalance_start(self) -> None:
        """Call when a rebalance starts (from the consumer's thread, before the revoke)."""
        super().on_rebalance_start()
        if self.processor is not None:
            self.processor.on_rebalance()

    async def on_stop(self) -> None:
        """Call when the app stops: bound the in-flight work before Faust waits for it."""
        if self.processor is not None:
            self.processor.begin_shutdown()
        await super().on_stop()


def create_app(ctx: PipelineContext) -> tuple[faust.App, TaskProcessor]:
    """Build the worker's Faust app around ``ctx`` (nothing connects until it runs)."""
    settings = ctx.settings
    app = WorkerApp(settings.faust_app_id, **app_settings(settings))
    topics = settings.topics
    parts = settings.kafka.partitions

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            partitions=parts,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

    submitted = raw_topic(topics.submitted)
    retry = raw_topic(topics.retry)
    outputs = {
        "ready": raw_topic(topics.ready),
        "status": raw_topic(topics.status),
        "retry": retry,
        "dlq": raw_topic(topics.dlq),
    }
    # Keyed by task_id like its source topics, with as many partitions.
    table = StatusTable(
        app,
        name=STATUS_TABLE,
        default=None,
        beacon=app.tables.beacon,
        partitions=parts,
        help="Task status by task_id.",
    )
    app.tables.add(table)
    offsets = OffsetGuard(app, (topics.submitted, topics.retry))
    offsets.install()
    liveness = Liveness()
    processor = TaskProcessor(
        ctx,
        table,
        outputs,
        topics,
        offsets=offsets,
        liveness=liveness,
        hard_exit=HardExit(settings.worker.shutdown_grace_s),
        flush=table.written,
    )
    app.processor = processor
    agents: list[tuple[faust.TopicT, str, Any]] = [
        (submitted, "transcribe", processor.consume_submitted),
        (retry, "retry", processor.consume_retry),
    ]
    for topic, name, fn in agents:
        app.agent(topic, name=name)(cast("Any", fn))
    register_routes(app, Readiness(app, ctx), liveness)
    register_lag(app, topics.submitted)
    return app, processor
