"""Kafka client configuration and topic administration shared by the API and the workers."""

import ssl
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from medvoice_common.settings import CommonSettings, KafkaSecurity


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """Return the TLS context for SSL/SASL_SSL, or None for plaintext."""
    if not security.protocol.endswith("SSL"):
        return None
    ctx = ssl.create_default_context(cafile=str(security.ca_file) if security.ca_file else None)
    if security.cert_file:
        ctx.load_cert_chain(
            str(security.cert_file), str(security.key_file) if security.key_file else None
        )
    return ctx


def aiokafka_security_kwargs(security: KafkaSecurity) -> dict[str, Any]:
    """Security arguments for any aiokafka client."""
    kwargs: dict[str, Any] = {"security_protocol": security.protocol}
    ctx = ssl_context(security)
    if ctx is not None:
        kwargs["ssl_context"] = ctx
    if security.protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = security.sasl_mechanism
        kwargs["sasl_plain_username"] = security.sasl_username
        kwargs["sasl_plain_password"] = (
            security.sasl_password.get_secret_value() if security.sasl_password else None
        )
    return kwargs


def topic_specs(settings: CommonSettings) -> list[NewTopic]:
    """The pipeline's topics with their partitions, replication and configs."""
    t = settings.topics
    rf = settings.kafka.replication
    parts = settings.kafka.partitions
    min_isr = {"min.insync.replicas": str(min(2, rf))}
    return [
        NewTopic(t.submitted, parts, rf, topic_configs=min_isr),
        NewTopic(t.retry, parts, rf, topic_configs=min_isr),
        NewTopic(t.ready, parts, rf, topic_configs=min_isr),
        NewTopic(t.status, parts, rf, topic_configs={**min_isr, "cleanup.policy": "compact"}),
        NewTopic(t.dlq, parts, rf, topic_configs={**min_isr, "retention.ms": "-1"}),
    ]


async def ensure_topics(settings: CommonSettings) -> list[str]:
    """Create any missing pipeline topic; return the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap,
        **aiokafka_security_kwargs(settings.kafka.security),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another replica created it between our list and create
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def partitions_of(settings: CommonSettings, topic: str) -> list[int]:
    """The partition numbers of ``topic`` as the cluster reports them."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap,
        **aiokafka_security_kwargs(settings.kafka.security),
    )
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for p in described[0]["partitions"])
