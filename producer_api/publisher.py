"""Publishing AudioSubmitted (and the task's first status) with one shared producer."""

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from medvoice_common.kafka import aiokafka_security_kwargs
from medvoice_common.settings import CommonSettings
from schemas.events import AudioSubmitted, TaskStatusChanged
from schemas.status import TaskStatus

log = logging.getLogger(__name__)


class DispatchError(Exception):
    """The event could not be handed to Kafka in time."""


class Publisher:
    """The API's one Kafka producer (acks=all). Connects in ``start``, not before."""

    def __init__(self, settings: CommonSettings, timeout_s: float) -> None:
        """Configure the producer; ``timeout_s`` bounds every publish."""
        self.settings = settings
        self.timeout_s = timeout_s
        self.topics = settings.topics
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka.bootstrap,
            acks="all",
            enable_idempotence=settings.kafka.idempotent_producer,
            request_timeout_ms=int(timeout_s * 1000),
            linger_ms=1,  # a tiny wait lets concurrent requests share a batch
            client_id="medvoice-api",
            **aiokafka_security_kwargs(settings.kafka.security),
        )

    async def start(self) -> None:
        """Connect to the cluster."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        await self._producer.stop()

    async def submit(
        self, event: AudioSubmitted, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        """Publish ``event`` and the task's ``queued`` status; return once both are acked.

        Raises:
            DispatchError: Kafka did not acknowledge within the timeout.
        """
        key = str(event.task_id).encode()
        queued = TaskStatusChanged(
            task_id=event.task_id,
            user_id=event.user_id,
            file_id=event.file_id,
            status=TaskStatus.QUEUED,
            submitted_at=event.submitted_at,
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                sent = await self._producer.send(
                    self.topics.submitted, event.to_bytes(), key=key, headers=headers
                )
                status = await self._producer.send(self.topics.status, queued.to_bytes(), key=key)
                await asyncio.gather(sent, status)
        except (TimeoutError, KafkaError) as exc:
            log.warning(
                "publish failed",
                extra={"task_id": str(event.task_id), "error": type(exc).__name__},
            )
            raise DispatchError("The task could not be queued; please retry.") from exc

    async def connected(self) -> bool:
        """Whether the cluster answers a metadata request now."""
        try:
            async with asyncio.timeout(2.0):
                await self._producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError):
            return False
        return True
