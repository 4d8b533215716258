"""The FastAPI application factory."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from medvoice_common import s3
from medvoice_common.heap import freeze_startup_heap, space_young_collections
from medvoice_common.s3_probe import ObjectProbe
from medvoice_common.startup import wait_for_kafka, wait_for_s3
from producer_api.auth import TokenVerifier
from producer_api.errors import validation_error
from producer_api.limits import BodyLimitMiddleware
from producer_api.observe import ObserveMiddleware
from producer_api.publisher import Publisher
from producer_api.retention import RetentionSweeper
from producer_api.routes import events, health, submit, tasks, uploads, users
from producer_api.settings import ApiSettings
from producer_api.status_store import StatusStore
from producer_api.status_view import StatusView
from producer_api.storage import Storage
from producer_api.streams import StreamSlots
from producer_api.submit_fast_path import SubmitFastPath

log = logging.getLogger(__name__)


async def _start_dependencies(app: FastAPI, settings: ApiSettings) -> None:
    await wait_for_s3(settings)
    await wait_for_kafka(settings)
    publisher = Publisher(settings, settings.api.publish_timeout_s)
    await publisher.start()
    view = StatusView(settings, StatusStore.open(settings))
    await view.start()  # catches up in the background; /readyz says how far
    app.state.publisher = publisher
    app.state.status_view = view
    app.state.retention = RetentionSweeper(view, publisher, settings.retention)
    app.state.retention.start()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the producer, the S3 client and the status view; flush and stop them at exit."""
    settings: ApiSettings = app.state.settings
    probe = ObjectProbe(settings)
    await probe.start()
    app.state.storage = Storage(s3.make_client(settings), settings, probe)
    await _start_dependencies(app, settings)
    log.info("api ready", extra={"bootstrap": settings.kafka.bootstrap})
    app.state.sse_slots.watch_signals()  # event streams end when the server shuts down
    freeze_startup_heap()  # full collections skip what start-up built (p99, CPU)
    space_young_collections()  # and young ones run every 10,000 allocations, not 700
    try:
        yield
    finally:
        app.state.sse_slots.unwatch_signals()
        await app.state.retention.stop()
        await app.state.status_view.stop()
        await app.state.publisher.stop()
        await probe.stop()


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the API; clients connect in the lifespan, not here."""
    app = FastAPI(title="MedVoice pipeline API", version="0.1.0", lifespan=lifespan)
    settings = settings or ApiSettings()
    app.state.settings = settings
    app.state.verifier = TokenVerifier(settings.auth)
    app.state.sse_slots = StreamSlots(settings.api.sse_max_streams)
    if settings.auth.mode == "none":
        log.warning(
            "AUTHENTICATION IS OFF (MEDVOICE_AUTH__MODE=none): any caller may act for any "
            "user. Development on one machine only; never expose this API."
        )
    for module in (submit, uploads, tasks, events, users, health):
        app.include_router(module.router)
    app.add_exception_handler(RequestValidationError, validation_error)
    if settings.api.submit_fast_path:  # innermost of ours: limits and metrics apply to it
        app.add_middleware(
            SubmitFastPath,
            route=submit.router.routes[0],
            http_error=app.exception_handlers[HTTPException],
        )
    app.add_middleware(  # inside observe: a 413 is counted too
        BodyLimitMiddleware,
        max_upload_bytes=settings.api.max_upload_bytes,
        max_body_bytes=settings.api.max_body_bytes,
    )

    app.add_middleware(ObserveMiddleware)  # outermost of ours: counts 413s and 500s too

    return app
