"""Waiting for Kafka and S3 at start-up, with bounded retries (tenacity)."""

import asyncio
import logging

from tenacity import AsyncRetrying, before_sleep_log, stop_after_delay, wait_exponential

from medvoice_common import kafka, s3
from medvoice_common.settings import CommonSettings

log = logging.getLogger(__name__)
STARTUP_WAIT_S = 120.0  # Kafka or S3 starting together with the service is up well within this


def _retrying() -> AsyncRetrying:
    return AsyncRetrying(
        stop=stop_after_delay(STARTUP_WAIT_S),
        wait=wait_exponential(multiplier=0.5, max=10),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )


async def wait_for_s3(settings: CommonSettings) -> None:
    """Wait until the bucket answers; on a non-AWS endpoint (dev, tests) create it first."""
    client = s3.make_client(settings)
    async for attempt in _retrying():
        with attempt:
            if settings.s3.endpoint_url:
                await asyncio.to_thread(s3.ensure_bucket, client, settings.s3.bucket)
            else:
                await asyncio.to_thread(client.head_bucket, Bucket=settings.s3.bucket)


async def wait_for_kafka(settings: CommonSettings) -> None:
    """Wait until Kafka answers, creating any missing pipeline topic."""
    async for attempt in _retrying():
        with attempt:
            created = await kafka.ensure_topics(settings)
            if created:
                log.info("topics created", extra={"topics": created})
