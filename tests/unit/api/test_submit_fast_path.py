"""The submission fast path answers exactly as FastAPI's route does, and serves what it should.

Every request goes to two apps on identical stand-ins: one with the fast path (the
default) and one with ``MEDVOICE_API__SUBMIT_FAST_PATH=false``. Their answers (status,
headers, body with the task id masked) and what they publish must be equal; the fast path's
counter says whether it served the request, declined it to the route, or never saw it.
"""

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from medvoice_common import tracing
from medvoice_common.s3_probe import S3ProbeError
from producer_api.publisher import DispatchError
from producer_api.settings import AuthSettings
from schemas.events import AudioSubmitted
from tests.fixtures import tokens
from tests.fixtures.fake_api import M4A_HEAD, FakeApi, FakePublisher, fake_api

ROOT = Path(__file__).resolve().parents[3]
SECRET = tokens.new_secret()
OWNER = "dr_owner"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SUBMIT = f"/process_audio_v2/{OWNER}"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CALLER_TRACE = TRACEPARENT.split("-")[1]

# Minted per request, not at import: the suite may run long after collection.
TOKENS: dict[str, Callable[[], str | None]] = {
    "owner": lambda: tokens.hs256(SECRET, OWNER),
    "other": lambda: tokens.hs256(SECRET, "dr_other"),
    "admin": lambda: tokens.hs256(SECRET, "ops", admin=True),
    "expired": lambda: tokens.hs256(SECRET, OWNER, ttl_s=-3600),
    "none": lambda: None,
}


@dataclass(frozen=True)
class Case:
    """One request, and who must answer it: ``served``, ``declined`` or ``bypassed``."""

    url: str
    outcome: str
    token: str = "owner"
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    storage_down: bool = False
    kafka_down: bool = False
    root_path: str = ""  # served under a path prefix (uvicorn --root-path)


CASES: dict[str, Case] = {
    # Valid parameters: the fast path answers, whatever the answer.
    "a file id": Case(f"{SUBMIT}?file_id=f1", "served"),
    "the latest upload": Case(SUBMIT, "served"),
    "every parameter": Case(
        f"{SUBMIT}?file_id=f1&file_extension=m4a&file_name=Visite%20M%C3%BCller%20%E2%9C%93.m4a",
        "served",
    ),
    "an unknown parameter is ignored": Case(f"{SUBMIT}?file_id=f1&colour=blue", "served"),
    "a caller's trace": Case(
        f"{SUBMIT}?file_id=f1", "served", headers=(("traceparent", TRACEPARENT),)
    ),
    "a broken trace": Case(
        f"{SUBMIT}?file_id=f1", "served", headers=(("traceparent", "not-a-trace"),)
    ),
    "the admin scope": Case(f"{SUBMIT}?file_id=f1", "served", token="admin"),
    "no such recording": Case(f"{SUBMIT}?file_id=f2", "served"),
    "another extension": Case(f"{SUBMIT}?file_id=f1&file_extension=wav", "served"),
    "nothing uploaded": Case("/process_audio_v2/dr_new", "served", token="admin"),
    "another user's token": Case(f"{SUBMIT}?file_id=f1", "served", token="other"),
    "an expired token": Case(f"{SUBMIT}?file_id=f1", "served", token="expired"),
    "no token": Case(f"{SUBMIT}?file_id=f1", "served", token="none"),
    "a basic scheme": Case(
        f"{SUBMIT}?file_id=f1", "served", token="none", headers=(("authorization", "Basic x"),)
    ),
    "a refused callback": Case(
        f"{SUBMIT}?file_id=f1&callback_url=http%3A%2F%2F127.0.0.1%2Fhook", "served"
    ),
    "storage down": Case(f"{SUBMIT}?file_id=f1", "served", storage_down=True),
    "kafka down": Case(f"{SUBMIT}?file_id=f1", "served", kafka_down=True),
    # Anything invalid or unusual: FastAPI's route answers.
    "an invalid file id": Case(f"{SUBMIT}?file_id=f%201", "declined"),
    "an empty file id": Case(f"{SUBMIT}?file_id=", "declined"),
    "an upper-case extension": Case(f"{SUBMIT}?file_id=f1&file_extension=M4A", "declined"),
    "a control character in the name": Case(f"{SUBMIT}?file_id=f1&file_name=a%07b", "declined"),
    "a long name": Case(f"{SUBMIT}?file_id=f1&file_name={'n' * 256}", "declined"),
    "a long user id": Case(f"/process_audio_v2/{'u' * 65}?file_id=f1", "declined"),
    "a bad user id without a token": Case(
        "/process_audio_v2/dr.x?file_id=f1", "declined", token="none"
    ),
    "a file id given twice": Case(f"{SUBMIT}?file_id=f1&file_id=f1", "declined"),
    "an idempotency key with a space": Case(
        f"{SUBMIT}?file_id=f1", "declined", headers=(("idempotency-key", "a b"),)
    ),
    "a long idempotency key": Case(
        f"{SUBMIT}?file_id=f1", "declined", headers=(("idempotency-key", "k" * 256),)
    ),
    "two traces": Case(
        f"{SUBMIT}?file_id=f1",
        "declined",
        headers=(("traceparent", TRACEPARENT), ("traceparent", TRACEPARENT)),
    ),
    # Not a submission: routing answers.
    "a GET": Case(f"{SUBMIT}?file_id=f1", "bypassed", method="GET"),
    "a trailing slash": Case(f"{SUBMIT}/?file_id=f1", "bypassed"),
    "no user": Case("/process_audio_v2/?file_id=f1", "bypassed"),
    "an encoded slash": Case("/process_audio_v2/dr%2Fowner?file_id=f1", "bypassed"),
    "under a root path": Case(f"/api{SUBMIT}?file_id=f1", "bypassed", root_path="/api"),
}


class RecordingPublisher(FakePublisher):
    """Also records the trace id each submission's records carry."""

    def __init__(self) -> None:
        super().__init__()
        self.trace_ids: list[str] = []

    async def submit(self, event: AudioSubmitted, headers: Any = None, **kwargs: Any) -> None:
        await super().submit(event, headers, **kwargs)
        (traceparent,) = [v for k, v in headers if k == tracing.TRACEPARENT]
        self.trace_ids.append(traceparent.decode().split("-")[1])


class DownPublisher(FakePublisher):
    """Kafka does not acknowledge."""

    async def submit(self, event: AudioSubmitted, headers: Any = None, **_: Any) -> None:
        raise DispatchError("no ack", maybe_published=False)


def _app(*, fast: bool, case: Case) -> FakeApi:
    api = fake_api(AuthSettings(hs256_secret=SECRET), submit_fast_path=fast)
    api.storage.objects[f"audio/{OWNER}/f1.m4a"] = M4A_HEAD
    if case.storage_down:
        api.storage.fail_with = S3ProbeError("refused")
    api.publisher = DownPublisher() if case.kafka_down else RecordingPublisher()
    api.app.state.publisher = api.publisher
    if case.root_path:
        transport = httpx.ASGITransport(
            app=api.app, raise_app_exceptions=False, root_path=case.root_path
        )
        api.client = httpx.AsyncClient(transport=transport, base_url="http://api.test")
    return api


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    published: list[dict[str, Any]]


async def _ask(api: FakeApi, case: Case) -> Answer:
    token = TOKENS[case.token]()
    headers = [("authorization", f"Bearer {token}")] if token else []
    headers += list(case.headers)
    async with api.client:
        resp = await api.client.request(case.method, case.url, headers=headers)
    fresh = {"task_id", "submitted_at", "event_id", "occurred_at"}  # new for every request
    published = [e.model_dump(exclude=fresh) for e in api.publisher.submitted]
    if isinstance(api.publisher, RecordingPublisher):
        # A fresh trace where the caller sent none (or a broken one); else the caller's.
        published += [
            {"trace_id": t if t == CALLER_TRACE else "<fresh>"} for t in api.publisher.trace_ids
        ]
    # The task id is fresh per request; everything else must be the same bytes.
    return Answer(
        resp.status_code, resp.headers.multi_items(), UUID.sub(b"<id>", resp.content), published
    )


def _counts() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value(
            "medvoice_api_submit_fast_path_total", {"outcome": outcome}
        )
        or 0.0
        for outcome in ("served", "declined")
    }


@pytest.mark.parametrize("name", list(CASES))
async def test_the_fast_path_answers_as_the_route_does(name: str) -> None:
    case = CASES[name]
    before = _counts()
    fast = await _ask(_app(fast=True, case=case), case)
    after_fast = _counts()
    reference = await _ask(_app(fast=False, case=case), case)
    assert _counts() == after_fast, "the route's app must not run the fast path"

    assert fast == reference
    if ("traceparent", TRACEPARENT) in case.headers and case.outcome == "served":
        assert {"trace_id": CALLER_TRACE} in fast.published
    served = after_fast["served"] - before["served"]
    declined = after_fast["declined"] - before["declined"]
    assert (served, declined) == {
        "served": (1, 0),
        "declined": (0, 1),
        "bypassed": (0, 0),
    }[case.outcome]


async def test_a_served_submission_is_published_with_the_requests_values() -> None:
    case = CASES["every parameter"]
    answer = await _ask(_app(fast=True, case=case), case)
    assert answer.status == 200
    assert (
        answer.body == b'{"message":"Audio processing started in the background","task_id":"<id>"}'
    )
    event, _trace = answer.published
    assert event["file_name"] == "Visite Müller ✓.m4a"
    assert (event["user_id"], event["file_id"], event["file_extension"]) == (OWNER, "f1", "m4a")


def test_a_traced_submission_gets_the_routes_spans() -> None:
    # FastAPI names its server span from routing: with an OpenTelemetry SDK set, the fast
    # path must leave the request to the route, or traces would lose the route.
    out = subprocess.run(
        [sys.executable, "-m", "tests.fixtures.traced_submit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    with_fast_path, route_only = (json.loads(line) for line in out.splitlines())
    assert with_fast_path["status"] == route_only["status"] == 200
    assert with_fast_path["spans"] == route_only["spans"]
    assert ["POST /process_audio_v2/{user_id}", "/process_audio_v2/{user_id}"] in route_only[
        "spans"
    ]
    assert with_fast_path["counts"] == {"served": 0.0, "declined": 0.0, "traced": 1.0}
