"""The identity provider's signing keys (a JWKS over HTTP): fetched rarely, kept when it fails.

A token whose ``kid`` is not in the cached set may mean the provider rotated its keys, so
the set is fetched again, but at most once per ``min_refetch_s``: tokens with made-up key
ids cannot make the API hammer the provider. A failed fetch (unreachable, an HTTP error, a
body that is not a JWKS) keeps the last good set, so valid tokens keep working through a
provider outage; it only shows when no key for the token can be found.
"""

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import jwt

log = logging.getLogger(__name__)
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 1024 * 1024  # a real key set is a few KB


class JwksUnavailable(Exception):
    """No key for the token can be found because the key set could not be fetched."""


class UnknownKeyId(jwt.InvalidKeyError):
    """The key set, fetched successfully, has no key for the token's ``kid``."""


def key_in(keys: jwt.PyJWKSet, kid: str | None) -> Any | None:
    """The key of ``kid`` in ``keys`` (a token without ``kid``: the set's only key), or None."""
    found = keys.keys
    for jwk in found:
        if jwk.key_id == kid or (kid is None and len(found) == 1):
            return jwk.key
    return None


def fetch_jwks(url: str, timeout_s: float = FETCH_TIMEOUT_S) -> jwt.PyJWKSet:
    """Fetch and parse the key set at ``url`` (blocking).

    Raises:
        JwksUnavailable: unreachable, not 200, too large, not JSON, or no usable key.
    """
    if urlparse(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url}")
    accept = {"Accept": "application/json"}
    request = urllib.request.Request(url, headers=accept)  # noqa: S310 - http(s), checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310 - as above
            body = resp.read(MAX_JWKS_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise JwksUnavailable(f"the JWKS endpoint answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise JwksUnavailable("the JWKS endpoint cannot be reached") from exc
    if len(body) > MAX_JWKS_BYTES:
        raise JwksUnavailable("the JWKS is over the size limit")
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise JwksUnavailable("the JWKS is not a JSON object")
        return jwt.PyJWKSet.from_dict(doc)
    except (ValueError, jwt.PyJWKError, jwt.PyJWKSetError) as exc:  # JSONDecodeError too
        raise JwksUnavailable("the JWKS endpoint did not answer a usable key set") from exc


class JwksCache:
    """The last good key set of one JWKS URL, refreshed when stale or on an unknown ``kid``."""

    def __init__(
        self,
        url: str,
        *,
        max_age_s: float,
        min_refetch_s: float,
        fetch: Callable[[str], jwt.PyJWKSet] = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Nothing is fetched until the first token needs a key."""
        self.url = url
        self.max_age_s = max_age_s
        self.min_refetch_s = min_refetch_s
        self._fetch = fetch
        self._clock = clock
        self._keys: jwt.PyJWKSet | None = None
        self._fetched_at = 0.0  # of the last good set
        self._attempted_at: float | None = None  # of the last fetch, good or not
        self._failure: str | None = None  # why the last fetch failed; None when it did not
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Fetches attempted so far (tests and diagnostics)."""

    async def key_for(self, kid: str | None) -> Any:
        """The public key a token with ``kid`` must be verified with.

        Raises:
            JwksUnavailable: the key is not in the last good set and no set could be fetched.
            UnknownKeyId: the set was fetched and has no such key.
        """
        key = None if self._keys is None else key_in(self._keys, kid)
        if key is None or self._stale():
            async with self._lock:  # one fetch at a time; the others then see its result
                if self._may_fetch():
                    await self._refresh()
            key = None if self._keys is None else key_in(self._keys, kid)
        if key is not None:
            return key
        if self._failure is not None:
            raise JwksUnavailable(self._failure)
        raise UnknownKeyId("No key in the JWKS matches the token's kid.")

    def _stale(self) -> bool:
        return self._clock() - self._fetched_at >= self.max_age_s

    def _may_fetch(self) -> bool:
        last = self._attempted_at
        return last is None or self._clock() - last >= self.min_refetch_s

    async def _refresh(self) -> None:
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            keys = await asyncio.to_thread(self._fetch, self.url)
        except JwksUnavailable as exc:
            self._failure = str(exc)
            log.warning(
                "jwks fetch failed; keeping the last good key set",
                extra={"reason": self._failure, "have_keys": self._keys is not None},
            )
            return
        self._keys, self._fetched_at, self._failure = keys, self._clock(), None
