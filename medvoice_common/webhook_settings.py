"""Completion webhooks' settings (``MEDVOICE_WEBHOOKS__*``), read by the API and the deliverer.

The API checks a submission's ``callback_url`` against ``allowed_hosts`` and
``allow_private``; the deliverer (``python -m processors.webhooks``) reads them all.
"""

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from medvoice_common.webhook_signature import secret_bytes


class WebhookOptions(BaseModel):
    """Where final statuses are POSTed, how they are signed and retried."""

    # Hosts a per-submission callback_url may name, comma-separated: "hooks.example.com" or
    # "*.example.com" (any subdomain). Empty: per-submission callbacks are refused (422).
    allowed_hosts: str = ""
    # Callbacks resolving to private, loopback, link-local, multicast or reserved addresses are
    # refused unless this is true (tests; a receiver inside the cluster).
    allow_private: bool = False
    # The per-deployment URL: every task's final status goes here (https only). Set by the
    # operator, so neither the allow-list nor the address check applies to it.
    url: str | None = None
    secret: SecretStr | None = None  # >= 32 bytes, or whsec_<base64>; the deliverer needs it
    ca_file: Path | None = None  # extra CA certificates trusted for receivers (PEM)
    max_retry_s: float = Field(default=3600.0, gt=0)  # a delivery is retried for this long
    retry_base_s: float = Field(default=1.0, gt=0)  # first backoff; doubles each attempt
    retry_max_backoff_s: float = Field(default=300.0, gt=0)  # longest wait between attempts
    timeout_s: float = Field(default=10.0, gt=0)  # one attempt: connect, send, answer
    max_in_flight: int = Field(default=256, ge=1)  # statuses being delivered at once
    group_id: str = "medvoice-webhooks"  # the deliverer's consumer group (topic prefix added)
    web_host: str = "127.0.0.1"  # /healthz, /readyz, /metrics
    web_port: int = Field(default=6067, ge=1, le=65535)

    @field_validator("secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                secret_bytes(value.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"MEDVOICE_WEBHOOKS__SECRET: {exc}") from None
        return value

    @field_validator("url")
    @classmethod
    def _url_is_https(cls, value: str | None) -> str | None:
        if value:
            parts = urlsplit(value)
            if parts.scheme != "https" or not parts.hostname:
                raise ValueError("MEDVOICE_WEBHOOKS__URL must be an https:// URL")
        return value or None

    @field_validator("ca_file")
    @classmethod
    def _ca_file_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"MEDVOICE_WEBHOOKS__CA_FILE: {value} is not a file")
        return value

    @property
    def hosts(self) -> tuple[str, ...]:
        """``allowed_hosts`` as lower-case names."""
        return tuple(h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip())
