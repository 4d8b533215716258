"""The end of a task's retention: a tombstone on ``task.status`` for each expired task.

Every replica runs a sweeper over its own view's expiry index (no scan: the index is sorted
by expiry time). The first tombstone read back removes the task from every view, so other
replicas find nothing left to do; two replicas sweeping at the same moment may publish the
same tombstone twice, which is harmless (a tombstone is idempotent). Recordings and
transcripts expire by the bucket's lifecycle rules (:mod:`producer_api.lifecycle`).
"""

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime

from aiokafka.errors import KafkaError
from prometheus_client import Counter

from producer_api.publisher import Publisher
from producer_api.settings import RetentionSettings
from producer_api.status_view import StatusView

log = logging.getLogger(__name__)
EXPIRED = Counter(
    "medvoice_retention_tombstones_total", "Tombstones published for tasks past their retention."
)


class RetentionSweeper:
    """Publishes tombstones for the view's expired tasks, every ``sweep_interval_s``."""

    def __init__(self, view: StatusView, publisher: Publisher, settings: RetentionSettings) -> None:
        """Sweep ``view`` through ``publisher``; nothing runs until ``start``."""
        self.view = view
        self.publisher = publisher
        self.settings = settings
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Sweep in the background."""
        self._runner = asyncio.create_task(self._run(), name="retention")

    async def stop(self) -> None:
        """Stop sweeping."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

    async def sweep(self, now: datetime | None = None) -> int:
        """Tombstone the tasks expired by ``now`` (one batch); returns how many."""
        if not self.view.caught_up:
            return 0  # its expiry index is not complete yet
        expired = self.view.expired(now or datetime.now(UTC), self.settings.sweep_batch)
        for task_id in expired:
            await self.publisher.tombstone(str(task_id))
            self.view.remove(task_id)
            EXPIRED.inc()
        if expired:
            log.info("expired tasks removed", extra={"count": len(expired)})
        return len(expired)

    async def _run(self) -> None:
        interval = self.settings.sweep_interval_s
        while True:
            # Jitter: replicas started together do not sweep at the same moment.
            await asyncio.sleep(interval * random.uniform(0.5, 1.5))  # noqa: S311 - not crypto
            try:
                while await self.sweep() == self.settings.sweep_batch:
                    pass
            except (TimeoutError, KafkaError) as exc:
                log.warning("retention sweep failed", extra={"error": type(exc).__name__})
