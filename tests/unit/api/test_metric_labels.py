"""Every label of the API's request metrics comes from a closed set, whatever a client sends."""

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from producer_api.settings import AuthSettings
from tests.fixtures import tokens
from tests.fixtures.fake_api import FakeApi, fake_api

REQUESTS = 200
STANDARD = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    fake = fake_api(AuthSettings(hs256_secret=tokens.new_secret()))
    async with fake.client:
        yield fake


def method_labels() -> set[str]:
    """The ``method`` values of every HTTP series the process exports now."""
    found: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("medvoice_http_request"):
            found |= {s.labels["method"] for s in family.samples if "method" in s.labels}
    return found


async def test_made_up_methods_share_one_label_value(api: FakeApi) -> None:
    made_up = [f"X{uuid.uuid4().hex[:12].upper()}" for _ in range(REQUESTS)]
    for method in made_up:
        resp = await api.client.request(method, "/healthz")
        assert resp.status_code in (404, 405), resp.status_code
    labels = method_labels()
    assert not labels & set(made_up), "a client's method became a label value"
    assert "other" in labels
    assert labels <= STANDARD | {"other"}
