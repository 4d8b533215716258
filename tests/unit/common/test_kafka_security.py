"""SASL/SSL settings reach both client stacks: aiokafka (API) and Faust (workers)."""

import datetime as dt
import ssl
from pathlib import Path
from typing import cast

import faust
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from medvoice_common.kafka import aiokafka_security_kwargs
from medvoice_common.settings import KafkaSecurity
from processors.faust_config import app_settings
from processors.settings import WorkerSettings

CA_NAME = "medvoice-test-ca"


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    """A throwaway self-signed CA certificate (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


# getpeercert()'s "subject": relative distinguished names of (attribute, value) pairs
Subject = tuple[tuple[tuple[str, str], ...], ...]


def trusts_test_ca(ctx: ssl.SSLContext) -> bool:
    return any(
        dict(rdn[0] for rdn in cast(Subject, c["subject"])).get("commonName") == CA_NAME
        for c in ctx.get_ca_certs()
    )


def worker_settings(monkeypatch: pytest.MonkeyPatch, **security: str) -> WorkerSettings:
    for name, value in security.items():
        monkeypatch.setenv(f"MEDVOICE_KAFKA__SECURITY__{name.upper()}", value)
    return WorkerSettings()


def test_sasl_ssl_reaches_aiokafka_and_faust(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    settings = worker_settings(
        monkeypatch,
        protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="medvoice-app",
        sasl_password="pw-from-secret",
        ca_file=str(ca_file),
    )
    kwargs = aiokafka_security_kwargs(settings.kafka.security)
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "medvoice-app"
    assert kwargs["sasl_plain_password"] == "pw-from-secret"
    ctx = kwargs["ssl_context"]
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert trusts_test_ca(ctx)

    creds = app_settings(settings)["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.username == "medvoice-app" and creds.password == "pw-from-secret"
    assert str(creds.mechanism.value) == "SCRAM-SHA-512"
    assert creds.protocol.value == "SASL_SSL"
    assert creds.ssl_context is not None and trusts_test_ca(creds.ssl_context)
    assert "pw-from-secret" not in repr(settings)  # SecretStr: never in logs or reprs


def test_ssl_with_a_client_certificate(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    settings = worker_settings(monkeypatch, protocol="SSL", ca_file=str(ca_file))
    kwargs = aiokafka_security_kwargs(settings.kafka.security)
    assert kwargs["security_protocol"] == "SSL" and "sasl_mechanism" not in kwargs
    assert trusts_test_ca(kwargs["ssl_context"])
    creds = app_settings(settings)["broker_credentials"]
    assert isinstance(creds, faust.SSLCredentials)
    assert trusts_test_ca(creds.context)


def test_plaintext_has_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = worker_settings(monkeypatch)
    assert aiokafka_security_kwargs(settings.kafka.security) == {"security_protocol": "PLAINTEXT"}
    assert app_settings(settings)["broker_credentials"] is None


def test_sasl_without_credentials_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match="MEDVOICE_KAFKA__SECURITY__SASL_USERNAME"):
        KafkaSecurity(protocol="SASL_SSL")


async def test_aiokafka_accepts_the_built_kwargs(ca_file: Path) -> None:
    from aiokafka import AIOKafkaProducer

    security = KafkaSecurity(
        protocol="SASL_SSL", sasl_username="u", sasl_password="p", ca_file=ca_file
    )
    producer = AIOKafkaProducer(
        bootstrap_servers="127.0.0.1:9", **aiokafka_security_kwargs(security)
    )
    assert producer.client._security_protocol == "SASL_SSL"
    assert producer.client._sasl_mechanism == "SCRAM-SHA-512"
