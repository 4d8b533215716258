"""The deliverer's web routes: ``/healthz``, ``/readyz`` and ``/metrics`` (aiohttp)."""

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from processors.webhooks.deliverer import Deliverer


def make_app(deliverer: Deliverer, loop_task: "asyncio.Task[None]") -> web.Application:
    """``/healthz``: the delivery loop runs; ``/readyz``: and partitions are assigned."""

    async def healthz(request: web.Request) -> web.Response:
        if loop_task.done():
            return web.json_response({"status": "failing", "problem": "loop stopped"}, status=503)
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        checks = {
            "delivery_loop": not loop_task.done(),
            "kafka_consumer_assigned": deliverer.assigned.is_set(),
        }
        ready = all(checks.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
