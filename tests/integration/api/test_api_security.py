"""The running API process: auth on every route, per-user isolation, hostile input, no S3 writes."""

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from schemas.events import TaskStatusChanged, TranscriptSummary
from schemas.ids import transcript_object_key
from schemas.status import TaskStatus
from tests.fixtures.documents import transcript_document
from tests.fixtures.fake_api import M4A_HEAD
from tests.fixtures.stack import StackConfig, start_api

pytestmark = pytest.mark.integration

MAX_UPLOAD = 16 * 1024  # MEDVOICE_API__MAX_UPLOAD_BYTES of this module's API
ALICE, BOB = "dr_alice", "dr_bob"
VIEW_WAIT_S = 30.0  # the API's status view follows task.status within a second or two


class Api:
    """One API process on an isolated deployment."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.proc, self.url = start_api(cfg, MEDVOICE_API__MAX_UPLOAD_BYTES=str(MAX_UPLOAD))
        self.anon = httpx.Client(base_url=self.url, timeout=30.0)

    def as_user(self, user: str, *, admin: bool = False) -> httpx.Client:
        return self.cfg.client(self.url, user, admin=admin)

    def keys(self) -> set[str]:
        s3 = self.cfg.s3()
        listed = s3.list_objects_v2(Bucket=self.cfg.bucket)
        return {o["Key"] for o in listed.get("Contents", [])}

    def upload(self, client: httpx.Client, user: str) -> dict[str, Any]:
        files = {"file": ("d.m4a", M4A_HEAD + bytes(256), "audio/mp4")}
        resp = client.post(f"/uploads/{user}", files=files)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())


@pytest.fixture(scope="module")
def api(
    kafka_broker: Any, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    a = Api(StackConfig(kafka_broker.bootstrap, s3_endpoint, tmp_path_factory.mktemp("api-sec")))
    yield a
    a.anon.close()
    a.proc.terminate()


async def completed_task(cfg: StackConfig, user: str) -> str:
    """Publish a completed status for a new task of ``user`` and store its transcript."""
    task_id = uuid.uuid4()
    key = transcript_object_key(user, task_id)
    doc = transcript_document(task_id, user, f"secret words of {user}")
    cfg.s3().put_object(Bucket=cfg.bucket, Key=key, Body=doc.model_dump_json().encode())
    change = TaskStatusChanged(
        task_id=task_id,
        user_id=user,
        file_id="f1",
        status=TaskStatus.COMPLETED,
        submitted_at=datetime.now(UTC),
        transcript=TranscriptSummary(
            language="en", duration_s=1.0, word_count=4, transcript_uri=f"s3://x/{key}"
        ),
    )
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            cfg.topic("task.status"), change.to_bytes(), key=str(task_id).encode()
        )
    finally:
        await producer.stop()
    return str(task_id)


def wait_visible(client: httpx.Client, task_id: str) -> None:
    end = time.monotonic() + VIEW_WAIT_S
    while time.monotonic() < end:
        if client.get(f"/tasks/{task_id}").status_code == 200:
            return
        time.sleep(0.2)  # polling the API until its view has the task
    raise AssertionError(f"task {task_id} never became visible")


ROUTES = [
    ("POST", "/process_audio_v2/{user}"),
    ("POST", "/uploads/{user}"),
    ("POST", "/uploads/{user}/presign"),
    ("GET", "/tasks/00000000-0000-4000-8000-000000000000"),
    ("GET", "/tasks/00000000-0000-4000-8000-000000000000/transcript"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_valid_token(api: Api, method: str, path: str) -> None:
    url = path.format(user=ALICE)
    for headers in (
        {},
        {"Authorization": "Bearer garbage"},
        {"Authorization": f"Bearer {api.cfg.token(ALICE, ttl_s=-3600)}"},
        {"Authorization": f"Bearer {StackConfig('x', 'y', api.cfg.log_dir).token(ALICE)}"},
    ):
        resp = api.anon.request(method, url, headers=headers)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.headers["www-authenticate"].startswith("Bearer")
    if "{user}" in path:
        with api.as_user(BOB) as bob:
            assert bob.request(method, url).status_code == 403


def test_health_and_metrics_are_open(api: Api) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert api.anon.get(path).status_code == 200


async def test_users_cannot_see_each_others_tasks_or_files(api: Api) -> None:
    alice, bob, admin = api.as_user(ALICE), api.as_user(BOB), api.as_user("ops", admin=True)
    with alice, bob, admin:
        task = await completed_task(api.cfg, ALICE)
        wait_visible(alice, task)
        assert "secret words" in alice.get(f"/tasks/{task}/transcript").text
        for path in (f"/tasks/{task}", f"/tasks/{task}/transcript"):
            resp = bob.get(path)
            assert resp.status_code == 404 and "secret" not in resp.text and ALICE not in resp.text
            assert admin.get(path).status_code == 200

        bobs_file = api.upload(bob, BOB)["file_id"]
        # Bob's file in Bob's path with Alice's token: forbidden.
        assert (
            alice.post(f"/process_audio_v2/{BOB}", params={"file_id": bobs_file}).status_code == 403
        )
        # Bob's file id in Alice's path: the key is Alice's, so there is no such recording.
        mine = alice.post(f"/process_audio_v2/{ALICE}", params={"file_id": bobs_file})
        assert mine.status_code == 404
        # Alice's "latest upload" never finds Bob's.
        assert alice.post(f"/process_audio_v2/{ALICE}").status_code == 404

        presigned = alice.post(f"/uploads/{ALICE}/presign").json()
        assert presigned["object_key"].startswith(f"audio/{ALICE}/")
        assert presigned["expires_in_s"] <= 300 and f"/audio/{ALICE}/" in presigned["url"]


ATTACKS: list[tuple[str, str, dict[str, Any]]] = [
    ("traversal in file_id", f"/process_audio_v2/{ALICE}", {"params": {"file_id": "../dr_bob/x"}}),
    ("encoded traversal in user", "/process_audio_v2/..%2Fdr_bob", {}),
    ("dot user", "/uploads/../presign", {}),
    (
        "traversal in extension",
        f"/uploads/{ALICE}/presign",
        {"params": {"file_extension": "m4a/../../x"}},
    ),
    (
        "control chars in file_name",
        f"/process_audio_v2/{ALICE}",
        {"params": {"file_id": "f1", "file_name": "a\r\nX-Injected: 1"}},
    ),
    (
        "bidi override in file_name",
        f"/process_audio_v2/{ALICE}",
        {"params": {"file_id": "f1", "file_name": "rec\u202e4pm.exe"}},
    ),
    (
        "oversized file_name",
        f"/process_audio_v2/{ALICE}",
        {"params": {"file_id": "f1", "file_name": "n" * 300}},
    ),
    (
        "not audio named m4a",
        f"/uploads/{ALICE}",
        {"files": {"file": ("x.m4a", b"#!/bin/sh\nrm -rf /\n" * 10, "audio/mp4")}},
    ),
    ("exe extension", f"/uploads/{ALICE}", {"files": {"file": ("x.exe", M4A_HEAD, "audio/mp4")}}),
    (
        "traversal in upload name",
        f"/uploads/{ALICE}",
        {"files": {"file": ("../../../etc/passwd", M4A_HEAD, "audio/mp4")}},
    ),
    (
        "oversized upload",
        f"/uploads/{ALICE}",
        {"files": {"file": ("x.m4a", M4A_HEAD + bytes(MAX_UPLOAD * 8), "audio/mp4")}},
    ),
    ("huge body on submit", f"/process_audio_v2/{ALICE}", {"content": bytes(512 * 1024)}),
    (
        "no file part",
        f"/uploads/{ALICE}",
        {"data": {"other": "x"}, "files": {"nofile": ("a", b"b")}},
    ),
]


@pytest.mark.parametrize(("name", "path", "kwargs"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_hostile_input_gets_a_clear_4xx_and_stores_nothing(
    api: Api, name: str, path: str, kwargs: dict[str, Any]
) -> None:
    before = api.keys()
    with api.as_user(ALICE) as alice:
        resp = alice.post(path, **kwargs)
    assert 400 <= resp.status_code < 500, (name, resp.status_code, resp.text)
    assert resp.status_code != 401
    body = resp.text
    assert "Traceback" not in body and "127.0.0.1" not in body and len(body) < 2000
    assert api.keys() == before


def test_a_chunked_upload_over_the_limit_is_cut_off(api: Api) -> None:
    boundary = "zz"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.m4a"\r\n\r\n'
    ).encode() + M4A_HEAD

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(256):  # 4 MiB in all, far over the 16 KiB limit
            yield bytes(16 * 1024)

    before = api.keys()
    with api.as_user(ALICE) as alice:
        resp = alice.post(
            f"/uploads/{ALICE}",
            content=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert resp.status_code == 413 and "limit" in resp.json()["detail"]
    assert api.keys() == before


def test_oversized_headers_are_refused(api: Api) -> None:
    resp = api.anon.get("/healthz", headers={"X-Big": "a" * 64 * 1024})
    assert resp.status_code in (400, 431)
