"""The verified-token cache: until exp at most, verified tokens only, bounded, keyed by hash."""

from typing import Any

import jwt
import pytest
from fastapi import HTTPException

from producer_api.auth import Caller, TokenVerifier
from producer_api.settings import AuthSettings
from producer_api.token_cache import VerifiedTokens, token_key
from tests.fixtures import tokens

SECRET = tokens.new_secret()


class Clock:
    """A settable clock (seconds since the epoch)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token PyJWT decodes (it still does the work): a cache hit adds none."""
    seen: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


async def test_a_verified_token_is_answered_from_the_cache(decodes: list[str]) -> None:
    v = TokenVerifier(AuthSettings(hs256_secret=SECRET))
    token = tokens.hs256(SECRET, "ops", admin=True)
    assert await v.verify(token) == Caller("ops", True)
    assert await v.verify(token) == Caller("ops", True)
    assert decodes == [token]
    other = tokens.hs256(SECRET, "dr_a")
    assert await v.verify(other) == Caller("dr_a", False)  # another token: verified itself
    assert decodes == [token, other]


async def test_a_refused_token_is_never_cached_and_a_forgery_of_a_cached_one_is_refused(
    decodes: list[str],
) -> None:
    v = TokenVerifier(AuthSettings(hs256_secret=SECRET))
    good = tokens.hs256(SECRET, "dr_a", admin=True)
    await v.verify(good)
    head, payload, _ = good.split(".")
    forged = f"{head}.{payload}.{'A' * 43}"  # the same claims, a signature never verified
    for _ in range(2):
        with pytest.raises(HTTPException) as info:
            await v.verify(forged)
        assert info.value.status_code == 401
    assert decodes == [good, forged, forged]


async def test_a_token_past_its_exp_is_not_cached_even_within_the_leeway(
    decodes: list[str],
) -> None:
    v = TokenVerifier(AuthSettings(hs256_secret=SECRET, leeway_s=60))
    late = tokens.hs256(SECRET, "dr_a", ttl_s=-5)  # accepted: within the leeway
    assert (await v.verify(late)).subject == "dr_a"
    assert (await v.verify(late)).subject == "dr_a"
    assert decodes == [late, late]


async def test_size_zero_turns_the_cache_off(decodes: list[str]) -> None:
    v = TokenVerifier(AuthSettings(hs256_secret=SECRET, token_cache_size=0))
    token = tokens.hs256(SECRET, "dr_a")
    await v.verify(token)
    await v.verify(token)
    assert decodes == [token, token]


def test_an_entry_ends_at_the_tokens_exp() -> None:
    clock = Clock(1000.0)
    cache: VerifiedTokens[str] = VerifiedTokens(10, max_age_s=300, clock=clock)
    cache.put(b"k", "caller", exp=1060.0)
    clock.now = 1059.9
    assert cache.get(b"k") == "caller"
    clock.now = 1060.0
    assert cache.get(b"k") is None
    assert len(cache) == 0


def test_an_entry_ends_after_max_age_when_exp_is_later() -> None:
    clock = Clock(1000.0)
    cache: VerifiedTokens[str] = VerifiedTokens(10, max_age_s=300, clock=clock)
    cache.put(b"k", "caller", exp=1_000_000.0)
    clock.now = 1299.0
    assert cache.get(b"k") == "caller"
    clock.now = 1300.0
    assert cache.get(b"k") is None


def test_an_expired_token_is_not_put() -> None:
    cache: VerifiedTokens[str] = VerifiedTokens(10, max_age_s=300, clock=Clock(1000.0))
    cache.put(b"k", "caller", exp=1000.0)
    assert len(cache) == 0


def test_the_cache_is_bounded_and_drops_the_oldest_first() -> None:
    cache: VerifiedTokens[int] = VerifiedTokens(3, max_age_s=300, clock=Clock(1000.0))
    for i in range(5):
        cache.put(token_key(f"t{i}"), i, exp=2000.0)
    assert len(cache) == 3
    assert [cache.get(token_key(f"t{i}")) for i in range(5)] == [None, None, 2, 3, 4]
    cache.put(token_key("t4"), 4, exp=2000.0)  # again: replaces, evicts nothing
    assert len(cache) == 3


def test_the_key_is_a_hash_not_the_token() -> None:
    token = tokens.hs256(SECRET, "dr_a")
    key = token_key(token)
    assert len(key) == 32 and token.encode() not in key
    assert key != token_key(token + "x")
