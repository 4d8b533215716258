"""The API's settings (env prefix ``MEDVOICE_``)."""

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings

from medvoice_common.settings import ENV_CONFIG, CommonSettings


class ApiOptions(BaseModel):
    """HTTP serving and limits (``MEDVOICE_API__*``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    publish_timeout_s: float = Field(default=5.0, gt=0)  # then 500: never a hang
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, gt=0)  # about 3 h of AAC
    max_audio_s: float = Field(default=3 * 3600, gt=0)  # same bound as the worker's
    presign_expiry_s: int = Field(default=300, ge=30, le=3600)  # short: the URL is a credential
    status_view_start_timeout_s: float = 30.0  # catching up on task.status at start-up
    shutdown_grace_s: float = 20.0


class ApiSettings(CommonSettings, BaseSettings):
    """Everything the API is configured by."""

    model_config = ENV_CONFIG

    api: ApiOptions = Field(default_factory=ApiOptions)
