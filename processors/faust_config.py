"""Faust application settings derived from the worker's settings."""

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
