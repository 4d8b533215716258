"""``python -m processors.webhooks``: deliver completion webhooks, configured by settings alone."""

import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web
from aiokafka import AIOKafkaConsumer
from tenacity import AsyncRetrying, before_sleep_log, stop_after_delay, wait_exponential

from medvoice_common.kafka import aiokafka_security_kwargs
from medvoice_common.logs import configure
from medvoice_common.startup import STARTUP_WAIT_S
from processors.webhooks import metrics
from processors.webhooks.deliverer import Deliverer
from processors.webhooks.sender import Sender
from processors.webhooks.settings import WebhookSettings
from processors.webhooks.web import make_app

log = logging.getLogger("processors.webhooks")


async def serve(settings: WebhookSettings) -> None:
    """Run the deliverer and its web routes until SIGTERM or SIGINT."""
    options = settings.webhooks
    sender = Sender(options)
    await sender.start()
    consumer = await _started_consumer(settings)
    deliverer = Deliverer(options, consumer, sender)
    deliverer.subscribe(settings.topics.status)
    metrics.initialise()
    loop_task = asyncio.create_task(deliverer.run())
    runner = web.AppRunner(make_app(deliverer, loop_task), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, options.web_host, options.web_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "webhook deliverer started",
        extra={
            "group": settings.group_id,
            "deployment_url_set": options.url is not None,
            "callback_hosts": len(options.hosts),
        },
    )
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({stopped, loop_task}, return_when=asyncio.FIRST_COMPLETED)
    loop_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop_task  # the finally commits what is done
    await consumer.stop()
    await sender.close()
    await runner.cleanup()
    if not stopped.done():
        raise RuntimeError("the delivery loop stopped")


async def _started_consumer(settings: WebhookSettings) -> AIOKafkaConsumer:
    """A connected consumer, once Kafka answers (bounded wait). It needs no topic admin
    rights: until task.status exists it is just not assigned (not ready)."""
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(STARTUP_WAIT_S),
        wait=wait_exponential(multiplier=0.5, max=10),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    ):
        with attempt:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=settings.kafka.bootstrap,
                group_id=settings.group_id,
                enable_auto_commit=False,
                auto_offset_reset="latest",  # a new group: from now on, not every old task
                client_id=settings.group_id,
                **aiokafka_security_kwargs(settings.kafka.security),
            )
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
    return consumer


def main() -> int:
    """Start the deliverer; returns the process exit status."""
    try:
        settings = WebhookSettings()
    except ValueError as exc:  # pydantic's ValidationError and unknown MEDVOICE_* names
        sys.stderr.write(f"invalid settings:\n{exc}\n")
        return 2
    if settings.webhooks.secret is None:
        sys.stderr.write("invalid settings:\nMEDVOICE_WEBHOOKS__SECRET is needed\n")
        return 2
    configure(settings.log_level)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
