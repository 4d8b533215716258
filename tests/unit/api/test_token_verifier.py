"""TokenVerifier with each key source: HS256 secret, PEM public key, JWKS over HTTP or file."""

import base64
import hashlib
import hmac
import json
from pathlib import Path

import jwt
import pytest
from fastapi import HTTPException

from producer_api.auth import MAX_TOKEN_CHARS, TokenVerifier
from producer_api.settings import AuthSettings
from tests.fixtures import tokens
from tests.fixtures.kafka_broker import free_port

SECRET = tokens.new_secret()


async def refused(verifier: TokenVerifier, token: str) -> HTTPException:
    with pytest.raises(HTTPException) as info:
        await verifier.verify(token)
    return info.value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_hs256_subject_and_admin_scope() -> None:
    v = TokenVerifier(AuthSettings(hs256_secret=SECRET))
    assert await v.verify(tokens.hs256(SECRET, "dr_a")) == ("dr_a", False)
    assert await v.verify(tokens.hs256(SECRET, "ops", admin=True)) == ("ops", True)


async def test_leeway_is_a_setting() -> None:
    token = tokens.hs256(SECRET, "dr_a", ttl_s=-10)
    assert (await TokenVerifier(AuthSettings(hs256_secret=SECRET)).verify(token)).subject == "dr_a"
    strict = TokenVerifier(AuthSettings(hs256_secret=SECRET, leeway_s=0))
    err = await refused(strict, token)
    assert err.status_code == 401 and "expired" in str(err.detail)


async def test_a_token_with_an_audience_is_refused_when_none_is_configured() -> None:
    v = TokenVerifier(AuthSettings(hs256_secret=SECRET))
    assert (await refused(v, tokens.hs256(SECRET, "dr_a", aud="other-api"))).status_code == 401


async def test_non_string_subject_and_oversized_tokens_are_refused() -> None:
    v = TokenVerifier(AuthSettings(hs256_secret=SECRET))
    numeric = jwt.encode({**tokens.claims("x"), "sub": 42}, SECRET, algorithm="HS256")
    assert (await refused(v, numeric)).status_code == 401
    assert (await refused(v, "a" * (MAX_TOKEN_CHARS + 1))).status_code == 401


@pytest.fixture
def rsa_pem_file(tmp_path: Path) -> tuple[Path, object]:
    key = tokens.rsa_key()
    path = tmp_path / "jwt-public.pem"
    path.write_text(tokens.public_pem(key))
    return path, key


async def test_rs256_with_a_public_key_file(rsa_pem_file: tuple[Path, object]) -> None:
    path, key = rsa_pem_file
    v = TokenVerifier(AuthSettings(public_key_file=path, audience="api", issuer="https://i/"))
    token = tokens.sign(tokens.claims("dr_a", aud="api", iss="https://i/"), key, "RS256")
    assert (await v.verify(token)).subject == "dr_a"
    other = tokens.sign(
        tokens.claims("dr_a", aud="api", iss="https://i/"), tokens.rsa_key(), "RS256"
    )
    assert (await refused(v, other)).status_code == 401


async def test_hs256_signed_with_the_public_key_is_refused(
    rsa_pem_file: tuple[Path, object],
) -> None:
    """The classic algorithm-confusion attack: the public PEM used as an HMAC secret."""
    path, _ = rsa_pem_file
    v = TokenVerifier(AuthSettings(public_key_file=path))
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(tokens.claims("dr_a", admin=True)).encode())
    mac = hmac.new(path.read_bytes(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert (await refused(v, f"{head}.{body}.{b64(mac)}")).status_code == 401


async def test_es256_with_a_jwks_served_over_http() -> None:
    key, rotated_out = tokens.ec_key(), tokens.ec_key()
    with tokens.serve_json(tokens.jwks(("k1", key), ("k0", tokens.rsa_key()))) as url:
        v = TokenVerifier(AuthSettings(jwks_url=url))
        good = tokens.sign(tokens.claims("dr_a", admin=True), key, "ES256", kid="k1")
        assert await v.verify(good) == ("dr_a", True)
        unknown = tokens.sign(tokens.claims("dr_a"), rotated_out, "ES256", kid="k9")
        assert (await refused(v, unknown)).status_code == 401
        forged = tokens.sign(tokens.claims("dr_a"), rotated_out, "ES256", kid="k1")
        assert (await refused(v, forged)).status_code == 401


async def test_an_unreachable_jwks_is_503_not_401() -> None:
    v = TokenVerifier(AuthSettings(jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json"))
    token = tokens.sign(tokens.claims("dr_a"), tokens.ec_key(), "ES256", kid="k1")
    assert (await refused(v, token)).status_code == 503


async def test_es256_with_a_jwks_file(tmp_path: Path) -> None:
    key = tokens.ec_key()
    path = tokens.write_json(tmp_path / "jwks.json", tokens.jwks(("k1", key)))
    v = TokenVerifier(AuthSettings(jwks_url=path.as_uri()))
    assert (await v.verify(tokens.sign(tokens.claims("dr_a"), key, "ES256", kid="k1"))).subject
    # One key and no kid: that key. A kid the set lacks: refused.
    assert (await v.verify(tokens.sign(tokens.claims("dr_b"), key, "ES256"))).subject == "dr_b"
    wrong_kid = tokens.sign(tokens.claims("dr_a"), key, "ES256", kid="k2")
    assert (await refused(v, wrong_kid)).status_code == 401
