"""The worker's web routes: ``/healthz``, ``/readyz`` and ``/metrics``."""

import asyncio
import logging
import time
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from processors import metrics
from processors.lifecycle import Liveness
from processors.pipeline import PipelineContext

log = logging.getLogger(__name__)
PROBE_CACHE_S = 5.0  # probes are cheap but the kubelet asks every few seconds
# medvoice_asr_backend_up must not depend on someone calling /readyz (docker-compose has no
# readiness probe on workers): probe at start-up and then on this period.
BACKEND_PROBE_INTERVAL_S = 30.0


class Readiness:
    """Whether the worker can do work: consumer assigned, table recovered, S3 and ASR reachable."""

    def __init__(self, app: faust.App, ctx: PipelineContext) -> None:
        """Watch ``app`` and the dependencies in ``ctx``."""
        self.app = app
        self.ctx = ctx
        self._checked_at = 0.0
        self._last: dict[str, bool] = {}

    async def check(self) -> dict[str, bool]:
        """Return each dependency's state (cached for a few seconds)."""
        now = time.monotonic()
        if now - self._checked_at > PROBE_CACHE_S or not all(self._last.values()):
            s3_ok, asr_ok = await asyncio.gather(self._probe_s3(), self._probe_asr())
            self._last = {"s3": s3_ok, "asr": asr_ok}
            self._checked_at = now
        consumer_ok = bool(self.app.consumer.assignment()) if self.app.consumer else False
        return {
            "kafka_consumer_assigned": consumer_ok,
            "table_recovered": self.table_recovered(),
            **self._last,
        }

    def table_recovered(self) -> bool:
        """Whether the status table is rebuilt from its changelog (a cold start at 2M
        finished tasks takes minutes; until then no work is taken, so not ready)."""
        # TableManager's recovery service (public, but not in TableManagerT's annotations).
        recovery: Any = self.app.tables.recovery  # type: ignore[attr-defined]
        return bool(recovery.completed.is_set()) and not self.app.in_recovery

    async def probe(self) -> None:
        """Run the dependency probes (for their metrics), ignoring the answer."""
        await self.check()

    async def _probe_s3(self) -> bool:
        try:
            await asyncio.to_thread(self.ctx.s3.head_bucket, Bucket=self.ctx.settings.s3.bucket)
        except Exception:
            log.warning("S3 probe failed", exc_info=True)
            return False
        return True

    async def _probe_asr(self) -> bool:
        name = self.ctx.backend.name
        try:
            await asyncio.get_running_loop().run_in_executor(
                self.ctx.io_executor, self.ctx.backend.check
            )
        except Exception:
            log.warning("ASR backend probe failed", extra={"backend": name}, exc_info=True)
            metrics.BACKEND_UP.labels(name).set(0)
            return False
        metrics.BACKEND_UP.labels(name).set(1)
        return True


def register_routes(app: faust.App, readiness: Readiness, liveness: Liveness) -> None:
    """Add the health and metrics routes to the worker's web server, and the periodic probes.

    ``/healthz`` fails once the worker cannot make progress (it is stopping itself then);
    ``/readyz`` fails then too, and whenever a dependency is unreachable.
    """
    app.task(readiness.probe)
    app.timer(BACKEND_PROBE_INTERVAL_S, name="dependency_probe")(readiness.probe)

    @app.page("/healthz")
    class Healthz(View):
        async def get(self, request: Request) -> Response:
            if not liveness.ok:
                return self.json({"status": "failing", "problem": liveness.problem}, status=503)
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Readyz(View):
        async def get(self, request: Request) -> Response:
            checks = {**await readiness.check(), "making_progress": liveness.ok}
            ready = all(checks.values())
            return self.json(
                {"status": "ready" if ready else "not ready", "checks": checks},
                status=200 if ready else 503,
            )

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
