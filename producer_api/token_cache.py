"""Tokens this replica verified recently, so that a client's next request skips the work.

Verifying a JWT (base64, JSON, the signature, the claims) cost about 8 % of the API's CPU
on the submission path, for the same token again and again. An entry is made only after
a token was fully verified (signature, exp/nbf, aud, iss, subject) and answers only that
exact token: the key is the SHA-256 of its text, so the cache holds no usable credential.

An entry lives until the token's ``exp`` (without the clock-skew leeway verification
allows) or ``max_age_s`` after it was made, whichever is first, so a key removed from the
identity provider's JWKS stops admitting cached tokens within ``max_age_s`` (the key set
itself is trusted as long). Revocation is unchanged: a JWT stays valid until its ``exp``
with or without this cache. At most ``max_entries`` entries (the oldest goes first).
"""

import hashlib
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def token_key(token: str) -> bytes:
    """The cache key of ``token``: its SHA-256."""
    return hashlib.sha256(token.encode()).digest()


class VerifiedTokens(Generic[T]):
    """What each recently verified token stands for, until it expires."""

    def __init__(
        self, max_entries: int, max_age_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        """An empty cache; ``max_entries`` 0 keeps nothing. ``clock``: seconds since the epoch."""
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._clock = clock
        self._entries: dict[bytes, tuple[float, T]] = {}

    def __len__(self) -> int:
        """Entries held now (expired ones included until they are looked up or evicted)."""
        return len(self._entries)

    def get(self, key: bytes) -> T | None:
        """What the token of ``key`` stands for, or None when unknown or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry[0]:
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: bytes, value: T, exp: float) -> None:
        """Remember a verified token (``exp``: its expiry, seconds since the epoch)."""
        if self.max_entries <= 0:
            return
        now = self._clock()
        expires_at = min(exp, now + self.max_age_s)
        if expires_at <= now:
            return
        entries = self._entries
        if key not in entries and len(entries) >= self.max_entries:
            del entries[next(iter(entries))]  # the oldest entry
        entries[key] = (expires_at, value)
