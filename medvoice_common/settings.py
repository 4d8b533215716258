"""Settings parts shared by every deployable.

One naming scheme: ``MEDVOICE_<GROUP>__<NAME>`` (``MEDVOICE_KAFKA__BOOTSTRAP``,
``MEDVOICE_S3__BUCKET``, ``MEDVOICE_WORKER__MAX_ATTEMPTS``), except the top-level
``MEDVOICE_LOG_LEVEL``. ``medvoice_common.env_check`` refuses unknown ``MEDVOICE_*`` names.
"""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from schemas.topics import Topics

ENV_PREFIX = "MEDVOICE_"
ENV_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX,
    env_nested_delimiter="__",
    extra="ignore",
    validate_default=True,
)


class KafkaSecurity(BaseModel):
    """How clients authenticate to and encrypt traffic with the brokers."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> "KafkaSecurity":
        if self.protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                "MEDVOICE_KAFKA__SECURITY__SASL_USERNAME and __SASL_PASSWORD are needed"
            )
        return self


class KafkaOptions(BaseModel):
    """The brokers, how to reach them, and the topics' shape (``MEDVOICE_KAFKA__*``)."""

    bootstrap: str = "127.0.0.1:9092"
    security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    topic_prefix: str = ""
    partitions: int = Field(default=6, ge=1)  # max worker parallelism
    replication: int = Field(default=1, ge=1)  # production: 3, with min.insync.replicas 2

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap_has_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"MEDVOICE_KAFKA__BOOTSTRAP: {server!r} is not host:port")
        return value


class S3Options(BaseModel):
    """The object store: where, who, encryption and timeouts (``MEDVOICE_S3__*``)."""

    endpoint_url: str | None = None  # empty: AWS S3 of ``region``
    bucket: str = "medvoice"
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None  # empty: boto3's chain (IRSA, instance role, ...)
    secret_access_key: SecretStr | None = None
    sse: Literal["none", "AES256", "aws:kms"] = "none"
    sse_kms_key_id: str | None = None
    connect_timeout_s: float = 2.0  # a reachable S3 answers a connect well within this
    read_timeout_s: float = 20.0  # large transcripts and audio objects, on a slow link
    max_attempts: int = 3  # botocore's own retries of one call, before ours


class RetentionSettings(BaseModel):
    """How long a task's data lives (``MEDVOICE_RETENTION__*``).

    Recordings (``audio/``) and transcripts (``transcripts/``) expire by the bucket's
    lifecycle rules (:mod:`producer_api.lifecycle`), counted from the object's creation; a
    task's status expires ``transcripts_days`` after its last change (a tombstone on
    ``task.status``, and the worker's status-table entry is deleted after as long).
    """

    recordings_days: int = Field(default=30, ge=1)
    transcripts_days: int = Field(default=365, ge=1)
    sweep_interval_s: float = Field(default=600.0, gt=0)  # how often expired tasks are sought
    sweep_batch: int = Field(default=500, ge=1)  # tombstones per sweep at most


class CommonSettings(BaseModel):
    """The fields every deployable has; mixed into each one's ``BaseSettings``."""

    kafka: KafkaOptions = Field(default_factory=KafkaOptions)
    s3: S3Options = Field(default_factory=S3Options)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def topics(self) -> Topics:
        """The topic names with this deployment's prefix."""
        return Topics.with_prefix(self.kafka.topic_prefix)
