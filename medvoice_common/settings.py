"""Settings parts shared by every deployable (env prefix ``MEDVOICE_``, nested with ``__``)."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from schemas.topics import Topics

ENV_CONFIG = SettingsConfigDict(
    env_prefix="MEDVOICE_",
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
                "MEDVOICE_KAFKA_SECURITY__SASL_USERNAME and __SASL_PASSWORD are needed"
            )
        return self


class S3Options(BaseModel):
    """Server-side encryption and timeouts of the object store."""

    sse: Literal["none", "AES256", "aws:kms"] = "none"
    sse_kms_key_id: str | None = None
    connect_timeout_s: float = 2.0  # a reachable S3 answers a connect well within this
    read_timeout_s: float = 20.0  # large transcripts and audio objects, on a slow link
    max_attempts: int = 3  # botocore's own retries of one call, before ours


class CommonSettings(BaseModel):
    """The fields every deployable has; mixed into each one's ``BaseSettings``."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    kafka_idempotent_producer: bool = True  # the embedded dev broker lacks it: make dev sets false
    topic_prefix: str = ""
    topic_partitions: int = Field(default=6, ge=1)  # max worker parallelism
    topic_replication: int = Field(default=1, ge=1)  # production: 3 (DESIGN.md §5)
    s3_endpoint_url: str | None = None
    s3_bucket: str = "medvoice"
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3: S3Options = Field(default_factory=S3Options)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"MEDVOICE_KAFKA_BOOTSTRAP: {server!r} is not host:port")
        return value

    @property
    def topics(self) -> Topics:
        """The topic names with this deployment's prefix."""
        return Topics.with_prefix(self.topic_prefix)
