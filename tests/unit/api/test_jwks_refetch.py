"""The JWKS over HTTP: refetches are rate-limited, an outage keeps the last good keys, and
every failure of the key source is a 401 or 503 with a reason, never a 500."""

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import HTTPException

from producer_api.auth import TokenVerifier
from producer_api.settings import AuthSettings
from tests.fixtures import tokens

UNKNOWN_KIDS = 25
CACHE_S = 0.2


@dataclass
class IdentityProvider:
    """A JWKS endpoint whose answer a test switches, counting the requests it serves."""

    url: str = ""
    body: bytes = b""
    status: int = 200
    content_type: str = "application/json"
    hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, doc: dict[str, Any]) -> None:
        self.body, self.status, self.content_type = (
            json.dumps(doc).encode(),
            200,
            "application/json",
        )


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    state = IdentityProvider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.hits += 1
            self.send_response(state.status)
            self.send_header("Content-Type", state.content_type)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


async def status_of(verifier: TokenVerifier, token: str) -> tuple[int, str]:
    """The HTTP status (and reason) ``verify`` answers; 200 when the token is accepted."""
    try:
        await verifier.verify(token)
    except HTTPException as exc:
        return exc.status_code, str(exc.detail)
    return 200, ""


async def test_unknown_kids_refetch_the_jwks_at_most_once_per_interval(
    idp: IdentityProvider,
) -> None:
    key = tokens.ec_key()
    idp.serve(tokens.jwks(("k1", key)))
    v = TokenVerifier(AuthSettings(jwks_url=idp.url))  # defaults: cache 300 s, refetch 30 s
    assert (await status_of(v, tokens.sign(tokens.claims("dr_a"), key, "ES256", kid="k1")))[
        0
    ] == 200
    answers = []
    for n in range(UNKNOWN_KIDS):
        forged = tokens.sign(tokens.claims("dr_a"), tokens.ec_key(), "ES256", kid=f"made-up-{n}")
        answers.append(await status_of(v, forged))
    # One fetch for the first token; an unknown kid may trigger one more, not one each.
    assert idp.hits <= 2, idp.hits
    assert all(code == 401 and "key id" in reason for code, reason in answers), answers[0]


async def test_a_failed_refetch_keeps_the_last_good_keys(idp: IdentityProvider) -> None:
    key = tokens.ec_key()
    idp.serve(tokens.jwks(("k1", key)))
    # A short cache life, and no refetch interval: the outage is met on the next token.
    v = TokenVerifier(AuthSettings(jwks_url=idp.url, jwks_cache_s=CACHE_S, jwks_min_refetch_s=0))
    good = tokens.sign(tokens.claims("dr_a"), key, "ES256", kid="k1")
    assert (await status_of(v, good))[0] == 200
    idp.status, idp.body = 502, b"<html>bad gateway</html>"  # the identity provider's blip
    await asyncio.sleep(CACHE_S * 2)  # the cached set is now stale: the next token refetches it
    fetches = idp.hits
    assert await status_of(v, good) == (200, "")  # the last good set still verifies it
    assert idp.hits == fetches + 1  # after a refetch was tried (and failed)
    rotated = tokens.sign(tokens.claims("dr_a"), tokens.ec_key(), "ES256", kid="k2")
    code, reason = await status_of(v, rotated)  # its key may be in the set it cannot fetch
    assert code == 503 and "identity provider" in reason


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (200, "text/html", b"<html>login</html>"),
        (200, "application/json", b'["not", "a", "key", "set"]'),
        (200, "application/json", b'{"keys": [{"kty": "nope"}]}'),
        (500, "text/plain", b"oops"),
    ],
    ids=["html", "json-list", "no-usable-key", "http-500"],
)
async def test_an_unusable_jwks_answer_is_503_with_a_reason(
    idp: IdentityProvider, status: int, content_type: str, body: bytes
) -> None:
    idp.status, idp.content_type, idp.body = status, content_type, body
    v = TokenVerifier(AuthSettings(jwks_url=idp.url))
    token = tokens.sign(tokens.claims("dr_a"), tokens.ec_key(), "ES256", kid="k1")
    code, reason = await status_of(v, token)
    assert code == 503 and "identity provider" in reason
