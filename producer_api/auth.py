"""Bearer-token authentication: who the caller is and which users it may act for."""

import logging
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlparse

import jwt
from fastapi import HTTPException, status

from producer_api.jwks import JwksCache, JwksUnavailable, UnknownKeyId, key_in
from producer_api.settings import AuthSettings
from producer_api.token_cache import VerifiedTokens, token_key

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
        self._jwks_cache: JwksCache | None = None
        # A verified token's caller, until its exp; no longer than the key set is trusted.
        self._verified: VerifiedTokens[Caller] = VerifiedTokens(
            settings.token_cache_size, settings.jwks_cache_s
        )
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
                self._jwks_cache = JwksCache(
                    settings.jwks_url,
                    max_age_s=settings.jwks_cache_s,
                    min_refetch_s=settings.jwks_min_refetch_s,
                )

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a token."""
        return self.settings.mode == "jwt"

    async def verify(self, token: str) -> Caller:
        """The caller a token stands for.

        A token verified before is answered from :mod:`producer_api.token_cache` until its
        ``exp`` (at most ``jwks_cache_s``); nothing else is ever cached.

        Raises:
            HTTPException: 401 when the token is malformed, expired, not signed by the
                configured key, names a key the JWKS lacks, or lacks the required claims;
                503 when its key is not known and the JWKS cannot be fetched now.
        """
        if len(token) > MAX_TOKEN_CHARS:
            raise unauthorized("The token is too long.")
        cache_key = token_key(token)
        cached = self._verified.get(cache_key)
        if cached is not None:
            return cached
        try:
            key = await self._key_for(token)
            claims = self._decode(token, key)
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("The token has expired.") from exc
        except JwksUnavailable as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "Tokens cannot be verified now: the identity provider's keys are unavailable; "
                "retry.",
            ) from exc
        except UnknownKeyId as exc:
            log.info("token refused", extra={"reason": "unknown kid"})
            raise unauthorized("The token's key id is not known.") from exc
        except jwt.PyJWTError as exc:
            log.info("token refused", extra={"reason": type(exc).__name__})
            raise unauthorized("The token is not valid.") from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise unauthorized("The token's subject is not a user id.")
        caller = Caller(subject, self.settings.admin_scope in _scopes(claims))
        exp = claims["exp"]  # required, and a number: PyJWT checked it
        self._verified.put(cache_key, caller, float(exp))
        return caller

    async def _key_for(self, token: str) -> Any:
        if self._jwks_cache is None and self._jwks is None:
            return self._key
        kid = jwt.get_unverified_header(token).get("kid")
        if kid is not None and not isinstance(kid, str):
            raise jwt.InvalidTokenError("The token's kid is not a string.")
        if self._jwks_cache is not None:
            return await self._jwks_cache.key_for(kid)
        key = None if self._jwks is None else key_in(self._jwks, kid)
        if key is None:
            raise UnknownKeyId("No key in the JWKS matches the token's kid.")
        return key

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
