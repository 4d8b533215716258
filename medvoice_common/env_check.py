"""Refuse unknown ``MEDVOICE_*`` environment variables, naming the closest valid one.

pydantic-settings ignores a variable it does not know, so a typo such as ``MEDVOICE_S3_SSE``
for ``MEDVOICE_S3__SSE`` would leave encryption silently off. Every deployable's settings
class mixes in :class:`StrictEnvSettings`: building it first checks every ``MEDVOICE_*``
name in the environment against the names that *any* MedVoice process reads, so one
ConfigMap or ``.env`` file can feed the API and the workers alike.
"""

import difflib
import importlib
import os
from collections.abc import Iterable, Mapping
from functools import cache

from pydantic import BaseModel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from medvoice_common.settings import ENV_PREFIX

# Every process's settings class; read lazily, so this module imports neither package.
DEPLOYABLES = (
    "producer_api.settings:ApiSettings",
    "processors.settings:WorkerSettings",
    "processors.webhooks.settings:WebhookSettings",
)
# Read by docker-compose itself (interpolation), never by a process; harmless when exported.
NOT_PROCESS_SETTINGS = frozenset({"MEDVOICE_SECRETS_DIR", "MEDVOICE_IMAGE"})
DELIMITER = "__"


class UnknownSettingError(ValueError):
    """One or more ``MEDVOICE_*`` variables that no MedVoice process reads."""


def env_names(model: type[BaseModel], prefix: str = ENV_PREFIX) -> set[str]:
    """Every environment name that sets a field of ``model``, groups included.

    A group (``MEDVOICE_KAFKA``) may be given whole as JSON, or field by field
    (``MEDVOICE_KAFKA__BOOTSTRAP``), as pydantic-settings allows.
    """
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        name = f"{prefix}{field_name.upper()}"
        names.add(name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= env_names(annotation, f"{name}{DELIMITER}")
    return names


@cache
def known_names() -> frozenset[str]:
    """The names any MedVoice process reads, plus compose's own."""
    names: set[str] = set(NOT_PROCESS_SETTINGS)
    for spec in DEPLOYABLES:
        module_name, _, class_name = spec.partition(":")
        model = getattr(importlib.import_module(module_name), class_name)
        names |= env_names(model)
    return frozenset(names)


def unknown_settings(environ: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """One line per unknown ``MEDVOICE_*`` name in ``environ``: the name and a suggestion."""
    valid = set(known)
    lines = []
    for raw in sorted(environ):
        name = raw.upper()  # pydantic-settings matches names case-insensitively
        if not name.startswith(ENV_PREFIX) or name in valid:
            continue
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"{raw}: not a MedVoice setting{hint}")
    return lines


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`UnknownSettingError` naming every unknown ``MEDVOICE_*`` variable."""
    lines = unknown_settings(os.environ if environ is None else environ, known_names())
    if lines:
        raise UnknownSettingError(
            "unknown MEDVOICE_* environment variables (settings are MEDVOICE_<GROUP>__<NAME>, "
            "see docs/operations.md):\n  " + "\n  ".join(lines)
        )


class StrictEnvSettings(BaseSettings):
    """A ``BaseSettings`` that checks the environment's ``MEDVOICE_*`` names first."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """pydantic-settings' own order of sources, after the name check."""
        check_environment()
        return init_settings, env_settings, dotenv_settings, file_secret_settings
