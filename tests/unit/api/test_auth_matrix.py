"""Every route of the real app against every kind of bad, foreign and good token."""

from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from producer_api.settings import AuthSettings
from tests.fixtures import tokens
from tests.fixtures.fake_api import M4A_HEAD, FakeApi, fake_api

SECRET = tokens.new_secret()
AUD = "medvoice-api"
ISS = "https://issuer.test/"
OWNER = "dr_owner"
OTHER = "dr_other"


def good(sub: str = OWNER, **kwargs: Any) -> str:
    return tokens.hs256(SECRET, sub, aud=AUD, iss=ISS, **kwargs)


BAD_TOKENS: dict[str, str | None] = {
    "missing": None,
    "not a jwt": "not-a-token",
    "expired beyond the leeway": good(ttl_s=-120),
    "wrong signature": tokens.hs256(tokens.new_secret(), OWNER, aud=AUD, iss=ISS),
    "wrong audience": tokens.hs256(SECRET, OWNER, aud="someone-else", iss=ISS),
    "no audience": tokens.hs256(SECRET, OWNER, iss=ISS),
    "wrong issuer": tokens.hs256(SECRET, OWNER, aud=AUD, iss="https://evil.test/"),
    "no exp": jwt.encode({"sub": OWNER, "aud": AUD, "iss": ISS}, SECRET, algorithm="HS256"),
    "no sub": jwt.encode(
        {k: v for k, v in tokens.claims(OWNER, aud=AUD, iss=ISS).items() if k != "sub"},
        SECRET,
        algorithm="HS256",
    ),
    # PyJWT types the key as required, but algorithm "none" signs with no key
    "alg none": jwt.encode(tokens.claims(OWNER, aud=AUD, iss=ISS), None, algorithm="none"),  # type: ignore[arg-type]
    "HS512 not accepted": jwt.encode(
        tokens.claims(OWNER, aud=AUD, iss=ISS), SECRET, algorithm="HS512"
    ),
}


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    fake = fake_api(AuthSettings(hs256_secret=SECRET, audience=AUD, issuer=ISS))
    fake.storage.objects[f"audio/{OWNER}/f1.m4a"] = M4A_HEAD
    fake.completed_task(OWNER)
    async with fake.client:
        yield fake


async def call(api: FakeApi, route: str, user: str, token: str | None) -> Any:
    """Call ``route`` acting on ``user``'s resources with ``token``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    c = api.client
    if route == "submit":
        return await c.post(f"/process_audio_v2/{user}", params={"file_id": "f1"}, headers=headers)
    if route == "upload":
        files = {"file": ("d.m4a", M4A_HEAD + bytes(64), "audio/mp4")}
        return await c.post(f"/uploads/{user}", files=files, headers=headers)
    if route == "presign":
        return await c.post(f"/uploads/{user}/presign", headers=headers)
    task_id = api.tasks.get(user, "00000000-0000-4000-8000-000000000000")
    if route == "task":
        return await c.get(f"/tasks/{task_id}", headers=headers)
    return await c.get(f"/tasks/{task_id}/transcript", headers=headers)


ROUTES = ["submit", "upload", "presign", "task", "transcript"]
OK = {"submit": 200, "upload": 201, "presign": 200, "task": 200, "transcript": 200}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_token_gets_401_with_a_bearer_challenge(
    api: FakeApi, route: str, case: str
) -> None:
    resp = await call(api, route, OWNER, BAD_TOKENS[case])
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert not api.publisher.submitted
    assert all(
        not k.startswith(f"audio/{OWNER}/") or k.endswith("/f1.m4a") for k in api.storage.objects
    )


async def test_a_non_bearer_scheme_gets_401(api: FakeApi) -> None:
    resp = await api.client.post(
        f"/uploads/{OWNER}/presign", headers={"Authorization": f"Basic {SECRET}"}
    )
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("route", ROUTES)
async def test_the_owner_is_served(api: FakeApi, route: str) -> None:
    resp = await call(api, route, OWNER, good())
    assert resp.status_code == OK[route], resp.text


@pytest.mark.parametrize("route", ROUTES)
async def test_a_token_within_the_clock_skew_leeway_is_accepted(api: FakeApi, route: str) -> None:
    resp = await call(api, route, OWNER, good(ttl_s=-5))
    assert resp.status_code == OK[route], resp.text


@pytest.mark.parametrize(
    ("route", "expected"),
    # Acting in another user's path is forbidden; another user's task is simply not found.
    [("submit", 403), ("upload", 403), ("presign", 403), ("task", 404), ("transcript", 404)],
)
async def test_another_users_token_is_refused(api: FakeApi, route: str, expected: int) -> None:
    resp = await call(api, route, OWNER, good(OTHER))
    assert resp.status_code == expected, resp.text
    assert "hello there" not in resp.text and OWNER not in resp.text
    assert not api.publisher.submitted


@pytest.mark.parametrize("route", ROUTES)
async def test_the_admin_scope_acts_for_any_user(api: FakeApi, route: str) -> None:
    resp = await call(api, route, OWNER, good("ops-admin", admin=True))
    assert resp.status_code == OK[route], resp.text


async def test_an_admin_scope_in_a_scp_list_counts(api: FakeApi) -> None:
    token = good("ops-admin", scp=["read", tokens.ADMIN_SCOPE])
    assert (await call(api, "presign", OWNER, token)).status_code == 200
    other_scope = good("ops-admin", scope="medvoice:admins medvoice")
    assert (await call(api, "presign", OWNER, other_scope)).status_code == 403


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
async def test_health_metrics_and_schema_need_no_token(api: FakeApi, path: str) -> None:
    assert (await api.client.get(path)).status_code == 200


async def test_the_upload_body_is_not_read_before_authentication(api: FakeApi) -> None:
    # A body too broken to parse: a 401 (not a 400) shows it was never parsed.
    resp = await api.client.post(
        f"/uploads/{OWNER}",
        content=b"garbage" * 100,
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert resp.status_code == 401


async def test_the_schema_declares_bearer_auth(api: FakeApi) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "security" in schema["paths"]["/process_audio_v2/{user_id}"]["post"]
    assert "security" not in schema["paths"]["/healthz"]["get"]


async def test_mode_none_acts_as_the_paths_user() -> None:
    fake = fake_api(AuthSettings(mode="none"))
    fake.storage.objects["audio/anyone/f1.m4a"] = M4A_HEAD
    task = fake.completed_task("someone")
    async with fake.client:
        resp = await fake.client.post("/process_audio_v2/anyone", params={"file_id": "f1"})
        assert resp.status_code == 200
        assert fake.publisher.submitted[0].user_id == "anyone"
        assert (await fake.client.get(f"/tasks/{task}")).status_code == 200
