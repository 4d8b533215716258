"""The webhook deliverer's settings (env prefix ``MEDVOICE_``)."""

from pydantic import Field

from medvoice_common.env_check import StrictEnvSettings
from medvoice_common.settings import ENV_CONFIG, CommonSettings
from medvoice_common.webhook_settings import WebhookOptions


class WebhookSettings(CommonSettings, StrictEnvSettings):
    """Everything the deliverer reads: Kafka (``MEDVOICE_KAFKA__*``) and its own group."""

    model_config = ENV_CONFIG

    webhooks: WebhookOptions = Field(default_factory=WebhookOptions)

    @property
    def group_id(self) -> str:
        """The consumer group, with the deployment's topic prefix."""
        return f"{self.kafka.topic_prefix}{self.webhooks.group_id}"
