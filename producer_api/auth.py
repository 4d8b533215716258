"""Bearer-token authentication: who the caller is and which users it may act for."""

import asyncio
import logging
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlparse

import jwt
from fastapi import HTTPException, status

from producer_api.settings import AuthSettings

log = logging.getLogger(__name__)
CHALLENGE = "Bearer"
# Enough for any real token (a few KB with many claims); longer ones are refused unparsed.
MAX_TOKEN_CHARS = 8192


class Caller(NamedTuple):
    """The authenticated caller of a request."""

    subject: str | None
    """The token's ``sub``; None when authentication is off (``MEDVOICE_AUTH__MODE=none``)."""
    admin: bool
    """Whether it may act for any user (the admin scope, or authentication off)."""

    def may_act_for(self, user_id: str) -> bool:
        """Whether this caller may read or write ``user_id``'s recordings and tasks."""
        return self.admin or self.subject == user_id


def unauthorized(detail: str, error: str = "invalid_token") -> HTTPException:
    """A 401 with the RFC 6750 challenge."""
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail,
        headers={"WWW-Authenticate": f'{CHALLENGE} error="{error}"'},
    )


def _scopes(claims: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for name in ("scope", "scp"):  # RFC 8693 space-separated string, or a list (Azure AD, Okta)
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return found


class TokenVerifier:
    """Verifies bearer tokens against the configured key source (no I/O until a request)."""

    def __init__(self, settings: AuthSettings) -> None:
        """Load the key (a PEM file or a ``file://`` JWKS is read here, once)."""
        self.settings = settings
        self.algorithms = settings.accepted_algorithms
        self._key: Any = None
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_client: jwt.PyJWKClient | None = None
        if settings.mode == "none":
            return
        if settings.hs256_secret is not None:
            self._key = settings.hs256_secret.get_secret_value()
        elif settings.public_key_file is not None:
            self._key = Path(settings.public_key_file).read_text(encoding="utf-8")
        elif settings.jwks_url is not None:
            url = urlparse(settings.jwks_url)
            if url.scheme == "file":
                self._jwks = jwt.PyJWKSet.from_json(
                    Path(unquote(url.path)).read_text(encoding="utf-8")
                )
            else:
                self._jwks_client = jwt.PyJWKClient(
                    settings.jwks_url, lifespan=settings.jwks_cache_s, timeout=5
                )

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a token."""
        return self.settings.mode == "jwt"

    async def verify(self, token: str) -> Caller:
        """The caller a token stands for.

        Raises:
            HTTPException: 401 when the token is malformed, expired, not signed by the
                configured key, or lacks the required claims; 503 when the JWKS endpoint
                cannot be reached.
        """
        if len(token) > MAX_TOKEN_CHARS:
            raise unauthorized("The token is too long.")
        try:
            key = await self._key_for(token)
            claims = self._decode(token, key)
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("The token has expired.") from exc
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("jwks unreachable", extra={"error": type(exc).__name__})
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "Tokens cannot be verified now; retry."
            ) from exc
        except jwt.PyJWTError as exc:
            log.info("token refused", extra={"reason": type(exc).__name__})
            raise unauthorized("The token is not valid.") from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise unauthorized("The token's subject is not a user id.")
        return Caller(subject, self.settings.admin_scope in _scopes(claims))

    async def _key_for(self, token: str) -> Any:
        if self._jwks_client is not None:
            client = self._jwks_client  # blocking fetch on a cache miss: off the event loop
            return (await asyncio.to_thread(client.get_signing_key_from_jwt, token)).key
        if self._jwks is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            keys = self._jwks.keys
            for jwk in keys:
                if jwk.key_id == kid or (kid is None and len(keys) == 1):
                    return jwk.key
            raise jwt.InvalidKeyError("No key in the JWKS matches the token's kid.")
        return self._key

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        s = self.settings
        required = ["exp", "sub"]
        if s.audience:
            required.append("aud")
        if s.issuer:
            required.append("iss")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=self.algorithms,
            audience=s.audience,
            issuer=s.issuer,
            leeway=s.leeway_s,
            options={"require": required},  # a token with an ``aud`` is refused without one
        )
        return claims
