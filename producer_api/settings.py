"""The API's settings (env prefix ``MEDVOICE_``)."""

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, Field, FilePath, SecretStr, model_validator

from medvoice_common.env_check import StrictEnvSettings
from medvoice_common.settings import ENV_CONFIG, CommonSettings
from medvoice_common.settings import RetentionSettings as RetentionSettings  # re-exported
from medvoice_common.webhook_settings import WebhookOptions

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
PUBLIC_KEY_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MIN_HMAC_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash


class AuthSettings(BaseModel):
    """How callers are authenticated (``MEDVOICE_AUTH__*``).

    ``jwt``: every route but health and metrics needs ``Authorization: Bearer <JWT>``,
    verified with exactly one key source: a shared HS256 secret, a PEM public key file, or a
    JWKS (``https://…`` fetched and cached, or ``file://…`` read at start-up). ``none``:
    no authentication, for ``make dev`` on one machine only.
    """

    mode: Literal["jwt", "none"] = "jwt"
    hs256_secret: SecretStr | None = None
    public_key_file: FilePath | None = None
    jwks_url: str | None = None
    audience: str | None = None  # checked when set (the token's ``aud`` must contain it)
    issuer: str | None = None  # checked when set
    algorithms: list[str] = Field(default_factory=list)  # empty: HS256, or RS256 + ES256
    leeway_s: float = Field(default=30.0, ge=0, le=300)  # clock skew allowed on exp/nbf/iat
    admin_scope: str = "medvoice:admin"  # in ``scope``/``scp``: may act for any user
    jwks_cache_s: float = Field(default=300.0, gt=0)  # how long a fetched JWKS is trusted
    # An unknown kid refetches the JWKS at most this often (a failed fetch counts too).
    jwks_min_refetch_s: float = Field(default=30.0, ge=0)
    # Verified tokens remembered (by hash) until exp, at most jwks_cache_s; 0: none.
    token_cache_size: int = Field(default=10_000, ge=0)

    @model_validator(mode="after")
    def _one_key_source(self) -> "AuthSettings":
        if self.mode == "none":
            return self
        sources = [
            name
            for name, value in (
                ("MEDVOICE_AUTH__HS256_SECRET", self.hs256_secret),
                ("MEDVOICE_AUTH__PUBLIC_KEY_FILE", self.public_key_file),
                ("MEDVOICE_AUTH__JWKS_URL", self.jwks_url),
            )
            if value
        ]
        if len(sources) != 1:
            raise ValueError(
                "MEDVOICE_AUTH__MODE=jwt needs exactly one of MEDVOICE_AUTH__HS256_SECRET, "
                "MEDVOICE_AUTH__PUBLIC_KEY_FILE or MEDVOICE_AUTH__JWKS_URL"
                + (f" (got {', '.join(sources)})" if sources else "")
                + "; MEDVOICE_AUTH__MODE=none turns authentication off (development only)"
            )
        secret = self.hs256_secret.get_secret_value().encode() if self.hs256_secret else b""
        if self.hs256_secret and len(secret) < MIN_HMAC_SECRET_BYTES:
            raise ValueError(
                f"MEDVOICE_AUTH__HS256_SECRET must be at least {MIN_HMAC_SECRET_BYTES} bytes"
            )
        if self.jwks_url and urlparse(self.jwks_url).scheme not in ("https", "http", "file"):
            raise ValueError("MEDVOICE_AUTH__JWKS_URL must be an https://, http:// or file:// URL")
        allowed = HMAC_ALGORITHMS if self.hs256_secret else PUBLIC_KEY_ALGORITHMS
        wrong = [a for a in self.algorithms if a not in allowed]
        if wrong:  # mixing families would allow algorithm-confusion attacks
            raise ValueError(
                f"MEDVOICE_AUTH__ALGORITHMS: {', '.join(wrong)} not usable with "
                f"{sources[0]} (allowed: {', '.join(sorted(allowed))})"
            )
        return self

    @property
    def accepted_algorithms(self) -> list[str]:
        """The algorithms a token may be signed with (never ``none``)."""
        if self.algorithms:
            return list(self.algorithms)
        return ["HS256"] if self.hs256_secret else ["RS256", "ES256"]


class ApiOptions(BaseModel):
    """HTTP serving and limits (``MEDVOICE_API__*``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    publish_timeout_s: float = Field(default=5.0, gt=0)  # then 500: never a hang
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, gt=0)  # about 3 h of AAC
    max_body_bytes: int = Field(default=64 * 1024, gt=0)  # other routes take no body
    max_header_bytes: int = Field(default=16 * 1024, ge=4096)  # request line + headers
    # Open requests, event streams included; then 503, not an exhausted process.
    limit_concurrency: int = Field(default=2000, ge=1)
    keep_alive_s: int = Field(default=5, ge=1)
    # Both enforce max_header_bytes (httptools through producer_api.header_limit).
    http: Literal["h11", "httptools"] = "httptools"
    max_audio_s: float = Field(default=3 * 3600, gt=0)  # same bound as the worker's
    # Valid submissions skip FastAPI's per-request machinery (producer_api.submit_fast_path);
    # false: every submission goes through FastAPI's route, the reference.
    submit_fast_path: bool = True
    presign_expiry_s: int = Field(default=300, ge=30, le=3600)  # short: the URL is a credential
    # The status view's RocksDB store. Empty: a fresh temporary directory per process (every
    # start rebuilds from task.status). One directory per process: RocksDB locks it.
    state_dir: Path | None = None
    status_store_block_cache_mb: int = Field(default=16, ge=1)  # RocksDB's read cache
    status_store_write_buffer_mb: int = Field(default=8, ge=1)  # each of 2 memtables
    # A task id this replica does not know: read task.status up to its end for at most this
    # long before answering 404 (the id may have been answered by another replica just now).
    status_view_sync_timeout_s: float = Field(default=2.0, gt=0)
    # GET /tasks/{task_id}/events: streams open at once on this replica (then 503 with
    # Retry-After), and how often an idle stream sends a keep-alive comment.
    sse_max_streams: int = Field(default=1000, ge=1)
    sse_keepalive_s: float = Field(default=15.0, gt=0)
    shutdown_grace_s: float = 20.0

    @model_validator(mode="after")
    def _streams_leave_room(self) -> "ApiOptions":
        # Every open stream is an open request: streams alone must not fill the replica.
        if self.sse_max_streams >= self.limit_concurrency:
            raise ValueError(
                f"MEDVOICE_API__SSE_MAX_STREAMS ({self.sse_max_streams}) must be below "
                f"MEDVOICE_API__LIMIT_CONCURRENCY ({self.limit_concurrency}): each event "
                "stream is an open request"
            )
        return self


class ApiSettings(CommonSettings, StrictEnvSettings):
    """Everything the API is configured by."""

    model_config = ENV_CONFIG

    api: ApiOptions = Field(default_factory=ApiOptions)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    webhooks: WebhookOptions = Field(default_factory=WebhookOptions)  # callback_url checks
