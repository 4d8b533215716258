"""The API's HTTP metrics label requests by route template and status class, never by path."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from medvoice_common import tracing
from producer_api.settings import AuthSettings
from schemas.ids import AudioExtension, audio_object_key
from tests.fixtures import tokens
from tests.fixtures.fake_api import FakeApi, fake_api

SECRET = tokens.new_secret()
USER = "dr_metrics-7"


def auth() -> dict[str, str]:
    """A fresh bearer header (minted per use: collection may be long before the test runs)."""
    return {"Authorization": f"Bearer {tokens.hs256(SECRET, USER)}"}


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    fake = fake_api(AuthSettings(hs256_secret=SECRET))
    async with fake.client:
        yield fake


def requests(route: str, method: str, status_class: str) -> float:
    labels = {"route": route, "method": method, "status_class": status_class}
    return REGISTRY.get_sample_value("medvoice_http_requests_total", labels) or 0.0


async def test_requests_are_counted_by_route_template(api: FakeApi) -> None:
    before = requests("/tasks/{task_id}", "GET", "4xx"), requests("unmatched", "GET", "4xx")
    health = requests("/healthz", "GET", "2xx")
    assert (await api.client.get("/healthz")).status_code == 200
    assert (await api.client.get(f"/tasks/{uuid.uuid4()}", headers=auth())).status_code == 404
    assert (await api.client.get("/no/such/path")).status_code == 404
    assert requests("/healthz", "GET", "2xx") == health + 1
    assert requests("/tasks/{task_id}", "GET", "4xx") == before[0] + 1
    assert requests("unmatched", "GET", "4xx") == before[1] + 1


async def test_metrics_carry_no_ids(api: FakeApi) -> None:
    await api.client.get(f"/uploads/{USER}/nothing", headers=auth())
    body = (await api.client.get("/metrics")).text
    assert USER not in body
    for family in text_string_to_metric_families(body):
        if family.name.startswith("medvoice_http"):
            for sample in family.samples:
                assert (
                    sample.labels.get("route", "/").startswith("/")
                    or sample.labels["route"] == "unmatched"
                ), sample


@pytest.mark.parametrize("incoming", [None, "nonsense"])
async def test_a_submission_without_a_valid_traceparent_gets_a_fresh_one(
    api: FakeApi, incoming: str | None
) -> None:
    sent: list[Any] = []

    async def submit(event: Any, headers: Any = None, **options: Any) -> None:
        sent.append(headers)

    api.publisher.submit = submit  # type: ignore[method-assign]
    api.storage.objects[audio_object_key(USER, "f1", AudioExtension.M4A)] = b"audio"
    headers = {**auth(), "traceparent": incoming} if incoming else auth()
    resp = await api.client.post(f"/process_audio_v2/{USER}?file_id=f1", headers=headers)
    assert resp.status_code == 200, resp.text
    ((name, value),) = sent[0]
    assert name == "traceparent"
    assert tracing.parse(value.decode()) is not None
