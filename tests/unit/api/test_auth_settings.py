"""MEDVOICE_AUTH__* settings: bad combinations fail at start-up, naming the setting."""

import logging
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from producer_api import __main__ as api_main
from producer_api import token as token_cli
from producer_api.main import create_app
from producer_api.settings import ApiSettings, AuthSettings
from tests.fixtures import tokens


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("MEDVOICE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_jwt_mode_without_a_key_source_fails_naming_the_settings() -> None:
    with pytest.raises(ValidationError) as info:
        ApiSettings()
    text = str(info.value)
    assert "MEDVOICE_AUTH__HS256_SECRET" in text and "MEDVOICE_AUTH__JWKS_URL" in text


def test_python_m_producer_api_exits_2_without_auth_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert api_main.main() == 2
    assert "MEDVOICE_AUTH__PUBLIC_KEY_FILE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MEDVOICE_AUTH__HS256_SECRET": "short"}, "MEDVOICE_AUTH__HS256_SECRET"),
        (
            {"MEDVOICE_AUTH__HS256_SECRET": "s" * 40, "MEDVOICE_AUTH__JWKS_URL": "https://x/j"},
            "got MEDVOICE_AUTH__HS256_SECRET, MEDVOICE_AUTH__JWKS_URL",
        ),
        ({"MEDVOICE_AUTH__JWKS_URL": "ftp://x/j"}, "MEDVOICE_AUTH__JWKS_URL"),
        (
            {"MEDVOICE_AUTH__JWKS_URL": "https://x/j", "MEDVOICE_AUTH__ALGORITHMS": '["HS256"]'},
            "MEDVOICE_AUTH__ALGORITHMS",
        ),
        (
            {"MEDVOICE_AUTH__HS256_SECRET": "s" * 40, "MEDVOICE_AUTH__ALGORITHMS": '["RS256"]'},
            "MEDVOICE_AUTH__ALGORITHMS",
        ),
        ({"MEDVOICE_AUTH__PUBLIC_KEY_FILE": "/nonexistent.pem"}, "public_key_file"),
        ({"MEDVOICE_AUTH__MODE": "off"}, "auth.mode"),
    ],
)
def test_bad_auth_settings_fail(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        ApiSettings()
    assert named in str(info.value)


def test_env_settings_are_read(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pem = tmp_path / "k.pem"
    pem.write_text(tokens.public_pem(tokens.ec_key()))
    clean_env.setenv("MEDVOICE_AUTH__PUBLIC_KEY_FILE", str(pem))
    clean_env.setenv("MEDVOICE_AUTH__AUDIENCE", "medvoice-api")
    clean_env.setenv("MEDVOICE_AUTH__ISSUER", "https://issuer/")
    clean_env.setenv("MEDVOICE_AUTH__LEEWAY_S", "5")
    auth = ApiSettings().auth
    assert (auth.audience, auth.issuer, auth.leeway_s) == ("medvoice-api", "https://issuer/", 5)
    assert auth.accepted_algorithms == ["RS256", "ES256"]
    assert "secret" not in repr(AuthSettings(hs256_secret="s" * 40)).replace("hs256_secret", "")


def test_mode_none_logs_a_loud_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(ApiSettings(auth=AuthSettings(mode="none")))
    assert any(
        r.levelno == logging.WARNING and "AUTHENTICATION IS OFF" in r.getMessage()
        for r in caplog.records
    )


def test_the_token_command_mints_a_token_the_api_accepts(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tokens.new_secret()
    clean_env.setenv("MEDVOICE_AUTH__HS256_SECRET", secret)
    assert token_cli.main(["--sub", "dr_x", "--admin", "--aud", "api", "--ttl", "60"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), secret, ["HS256"], audience="api")
    assert claims["sub"] == "dr_x" and "medvoice:admin" in claims["scope"].split()
    assert token_cli.main(["--sub", "../etc"]) == 2


def test_the_token_command_signs_with_a_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tokens.ec_key()
    (tmp_path / "k.pem").write_text(tokens.private_pem(key))
    assert token_cli.main(["--sub", "dr_x", "--private-key", str(tmp_path / "k.pem")]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert jwt.decode(token, key.public_key(), ["ES256"])["sub"] == "dr_x"
