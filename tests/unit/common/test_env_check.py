"""One settings scheme, and unknown ``MEDVOICE_*`` names refused at start-up with a hint."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medvoice_common.env_check import (
    UnknownSettingError,
    check_environment,
    env_names,
    known_names,
)
from processors.settings import WorkerSettings
from producer_api.settings import ApiSettings

ROOT = Path(__file__).resolve().parents[3]


def test_every_name_follows_the_group_scheme() -> None:
    """Each setting is MEDVOICE_<GROUP>__<NAME>, except the top-level log level."""
    leaves = {
        name
        for name in env_names(ApiSettings) | env_names(WorkerSettings)
        if not any(other.startswith(f"{name}__") for other in known_names())
    }
    flat = {name for name in leaves if "__" not in name}
    assert flat == {"MEDVOICE_LOG_LEVEL"}
    # No group's name is a prefix of a flat name: a missing underscore cannot collide.
    groups = {name for name in known_names() if any(o.startswith(f"{name}__") for o in leaves)}
    assert "MEDVOICE_S3" in groups
    assert "MEDVOICE_KAFKA__SECURITY" in groups


def test_the_known_names_cover_both_processes() -> None:
    names = known_names()
    for name in (
        "MEDVOICE_KAFKA__BOOTSTRAP",
        "MEDVOICE_KAFKA__SECURITY__SASL_PASSWORD",
        "MEDVOICE_S3__SSE",
        "MEDVOICE_S3__BUCKET",
        "MEDVOICE_API__PORT",
        "MEDVOICE_AUTH__JWKS_URL",
        "MEDVOICE_WORKER__MAX_ATTEMPTS",
        "MEDVOICE_RIVA__URI",
        "MEDVOICE_WHISPER__MODEL",
        "MEDVOICE_ASR__BACKEND",
    ):
        assert name in names


@pytest.mark.parametrize(
    ("typo", "hint"),
    [
        ("MEDVOICE_S3_SSE", "MEDVOICE_S3__SSE"),  # the silent encryption-off case
        ("MEDVOICE_KAFKA_BOOTSTRAP", "MEDVOICE_KAFKA__BOOTSTRAP"),  # the old flat name
        ("MEDVOICE_RIVA_URI", "MEDVOICE_RIVA__URI"),
        ("MEDVOICE_WORKER__MAX_ATEMPTS", "MEDVOICE_WORKER__MAX_ATTEMPTS"),
        ("medvoice_auth__jwks_uri", "MEDVOICE_AUTH__JWKS_URL"),  # matched case-insensitively
    ],
)
def test_an_unknown_name_is_refused_with_the_closest_valid_one(typo: str, hint: str) -> None:
    with pytest.raises(UnknownSettingError) as err:
        check_environment({typo: "x", "MEDVOICE_S3__BUCKET": "b", "PATH": "/bin"})
    message = str(err.value)
    assert typo in message
    assert f"did you mean {hint}?" in message
    assert "MEDVOICE_S3__BUCKET" not in message  # valid names are not reported


def test_valid_and_foreign_names_pass() -> None:
    check_environment({"MEDVOICE_S3__SSE": "AES256", "HOME": "/root", "MEDVOICEX": "1"})


def test_settings_classes_refuse_an_unknown_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDVOICE_AUTH__MODE", "none")
    monkeypatch.setenv("MEDVOICE_S3_SSE", "AES256")
    for cls in (ApiSettings, WorkerSettings):
        with pytest.raises(UnknownSettingError, match="MEDVOICE_S3__SSE"):
            cls()
    monkeypatch.delenv("MEDVOICE_S3_SSE")
    monkeypatch.setenv("MEDVOICE_S3__SSE", "AES256")
    assert WorkerSettings().s3.sse == "AES256"
    assert ApiSettings().s3.sse == "AES256"


def test_one_environment_feeds_both_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker-only name in the API's environment (one shared ConfigMap) is not an error."""
    monkeypatch.setenv("MEDVOICE_AUTH__MODE", "none")
    monkeypatch.setenv("MEDVOICE_WORKER__MAX_ATTEMPTS", "3")
    monkeypatch.setenv("MEDVOICE_API__PORT", "8081")
    assert ApiSettings().api.port == 8081
    assert WorkerSettings().worker.max_attempts == 3


@pytest.mark.parametrize("module", ["producer_api", "processors"])
def test_the_process_exits_naming_the_variable(module: str) -> None:
    """``python -m`` of each process stops before connecting to anything, exit status 2."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MEDVOICE_")}
    env["MEDVOICE_S3_SSE"] = "aws:kms"
    result = subprocess.run(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "MEDVOICE_S3_SSE" in result.stderr
    assert "did you mean MEDVOICE_S3__SSE?" in result.stderr
