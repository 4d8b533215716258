"""Faust application settings derived from the worker's settings, and the one consumer
setting Faust does not expose (how long a fetch waits on the broker)."""

import inspect
from collections.abc import Callable
from typing import Any

import faust
from faust.types.auth import CredentialsT

from medvoice_common.kafka import ssl_context
from medvoice_common.settings import KafkaSecurity
from processors.settings import WorkerSettings


def broker_credentials(security: KafkaSecurity) -> CredentialsT | None:
    """Faust's credentials object for the configured Kafka security, or None."""
    ctx = ssl_context(security)
    if security.protocol.startswith("SASL"):
        password = security.sasl_password.get_secret_value() if security.sasl_password else ""
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=password,
            ssl_context=ctx,
            mechanism=security.sasl_mechanism,
        )
    if ctx is not None:
        return faust.SSLCredentials(ctx)
    return None


class IncompatibleConsumer(RuntimeError):
    """Faust's or aiokafka's consumer lacks what :func:`install_fetch_wait` changes."""


# Faust 0.15 creates the worker's aiokafka consumer in its consumer thread's private
# ``_create_worker_consumer(transport)`` with ``fetch_max_wait_ms=1500`` hard-coded; aiokafka
# keeps the value in ``_fetch_max_wait_ms`` until ``start()`` hands it to its fetcher.
PRIVATE_FACTORY = "_create_worker_consumer"
PRIVATE_WAIT = "_fetch_max_wait_ms"


def install_fetch_wait(consumer: Any, fetch_max_wait_ms: int) -> None:
    """Make the worker's Kafka consumer wait at most ``fetch_max_wait_ms`` per fetch.

    A fetch returns as soon as a record is there on Apache Kafka, but a broker that holds
    every fetch for its whole wait (the embedded dev broker) made an idle worker start a
    submitted task up to Faust's 1.5 s late; a seek (the offset guard's re-read) also waits
    for the fetch in flight. A shorter wait costs a few small requests a second when idle.

    Raises:
        IncompatibleConsumer: the private parts changed (checked at start-up); the consumer
            itself checks aiokafka's attribute when it is created.
    """
    thread = getattr(consumer, "_thread", None)  # Faust's consumer thread (private)
    factory = getattr(thread, PRIVATE_FACTORY, None)
    if not callable(factory) or list(inspect.signature(factory).parameters) != ["transport"]:
        raise IncompatibleConsumer(
            f"Faust's consumer thread has no {PRIVATE_FACTORY}(transport): this Faust version "
            "creates its consumer differently and the fetch wait cannot be set"
        )
    create: Callable[[Any], Any] = factory

    def create_tuned(transport: Any) -> Any:
        kafka_consumer = create(transport)
        if not isinstance(getattr(kafka_consumer, PRIVATE_WAIT, None), int):
            raise IncompatibleConsumer(f"aiokafka's consumer has no {PRIVATE_WAIT}")
        setattr(kafka_consumer, PRIVATE_WAIT, fetch_max_wait_ms)
        return kafka_consumer

    setattr(thread, PRIVATE_FACTORY, create_tuned)


def app_settings(settings: WorkerSettings) -> dict[str, Any]:
    """Keyword arguments for ``faust.App``."""
    w = settings.worker
    servers = ";".join(f"kafka://{s.strip()}" for s in settings.kafka.bootstrap.split(","))
    return {
        "broker": servers,
        "broker_credentials": broker_credentials(settings.kafka.security),
        "store": w.store,
        "datadir": str(w.data_dir),
        "topic_partitions": settings.kafka.partitions,
        "topic_replication_factor": settings.kafka.replication,
        "topic_allow_declare": True,
        "producer_acks": -1,  # acks=all: an emitted event survives a broker loss
        "broker_session_timeout": w.session_timeout_s,
        "broker_heartbeat_interval": w.heartbeat_s,
        "broker_commit_interval": 1.0,  # commit often: a crash redelivers little
        "consumer_auto_offset_reset": "earliest",
        # Rebalances and shutdown wait for the events taken to be acked; the in-flight work
        # is bounded by the processor (TaskProcessor.on_rebalance / begin_shutdown), and what
        # is committed only passes finished records (processors.offsets).
        "stream_wait_empty": True,
        "web_enabled": True,
        "web_host": w.web_host,
        "web_bind": w.web_host,
        "web_port": w.web_port,
        "autodiscover": False,
        "processing_guarantee": "at_least_once",  # duplicates are recognised by task_id
    }
