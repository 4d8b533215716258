"""The Faust application: topics, the task-status table, the agents and the web routes."""

from typing import Any, cast

import faust

from processors import fetch_guard
from processors.agents import TaskProcessor
from processors.faust_config import app_settings, install_fetch_wait
from processors.health import Readiness, register_routes
from processors.lag import register_lag
from processors.lifecycle import HardExit, Liveness
from processors.offsets import OffsetGuard
from processors.pipeline import PipelineContext
from processors.status_table import STATUS_TABLE, StatusTable, check_store, register_expiry


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
    check_store(table)
    register_expiry(app, table, settings.retention)
    offsets = OffsetGuard(app, (topics.submitted, topics.retry))
    offsets.install()
    install_fetch_wait(app.consumer, settings.worker.fetch_max_wait_ms)
    fetch_guard.install(app.consumer)
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
