"""Completion webhooks end to end: the API, a worker and ``python -m processors.webhooks`` on
the real broker and S3 endpoint, delivering to a local HTTPS receiver (a throw-away CA the
deliverer is told to trust) that verifies every signature and fails the first attempts.

One stack for the module: user A's dictation completes, user B's corrupt recording fails;
each submission names its own callback path on the receiver.
"""

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from schemas.events import ErrorInfo, TaskStatusChanged
from schemas.status import TaskStatus
from tests.fixtures.audio import spoken_clip
from tests.fixtures.kafka_broker import KafkaBroker, free_port
from tests.fixtures.processes import ManagedProcess, python_module
from tests.fixtures.stack import StackConfig, start_api, start_worker
from tests.fixtures.topic_reader import produce
from tests.fixtures.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration
SECRET = "whsec_" + "c2VjcmV0LW9mLWF0LWxlYXN0LTMyLWJ5dGVzLWZvci10ZXN0cw=="
USER_A, USER_B = "dr_hook_a", "dr_hook_b"
A_SECRET_QUERY = "token=do-not-log-me-7f3a"
FAIL_FIRST = 2


@dataclass
class Stack:
    cfg: StackConfig
    api: str
    deliverer: ManagedProcess
    deliverer_url: str
    receiver: WebhookReceiver
    processes: list[ManagedProcess]


def start_deliverer(cfg: StackConfig, **env: str) -> tuple[ManagedProcess, str]:
    """``python -m processors.webhooks``, ready once it holds task.status's partitions."""
    port = free_port()
    proc = ManagedProcess(
        f"webhooks-{port}",
        python_module("processors.webhooks"),
        cfg.env(MEDVOICE_WEBHOOKS__WEB_PORT=str(port), **env),
        cfg.log_dir,
    )
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(f"{url}/readyz")
    return proc, url


@pytest.fixture(scope="module")
def stack(
    kafka_broker: KafkaBroker, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    receiver = WebhookReceiver(SECRET, tmp_path_factory.mktemp("receiver"))
    receiver.fail_first["hooks/a"] = FAIL_FIRST
    receiver.start()
    cfg = StackConfig(kafka_broker.bootstrap, s3_endpoint, tmp_path_factory.mktemp("webhooks"))
    cfg.extra_env.update(
        {
            "MEDVOICE_WEBHOOKS__SECRET": SECRET,
            "MEDVOICE_WEBHOOKS__ALLOWED_HOSTS": "localhost",
            "MEDVOICE_WEBHOOKS__ALLOW_PRIVATE": "true",  # the receiver is on this machine
            "MEDVOICE_WEBHOOKS__CA_FILE": str(receiver.ca_file),
            "MEDVOICE_WEBHOOKS__URL": receiver.url("deployment"),
            "MEDVOICE_WEBHOOKS__RETRY_BASE_S": "0.2",
            "MEDVOICE_WEBHOOKS__RETRY_MAX_BACKOFF_S": "1",
        }
    )
    processes: list[ManagedProcess] = []
    try:
        api, api_url = start_api(cfg)  # creates the topics
        processes.append(api)
        deliverer, deliverer_url = start_deliverer(cfg)
        processes.append(deliverer)
        worker, _ = start_worker(cfg)
        processes.append(worker)
        yield Stack(cfg, api_url, deliverer, deliverer_url, receiver, processes)
    finally:
        for proc in reversed(processes):
            proc.terminate()
        receiver.stop()


@pytest.fixture(scope="module")
def submitted(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A's dictation (completes) and B's corrupt recording (fails), each with its callback."""
    cfg, s3 = stack.cfg, stack.cfg.s3()
    clip = spoken_clip("Patient reports mild headache.", "m4a", tmp_path_factory.mktemp("clip"))
    s3.put_object(Bucket=cfg.bucket, Key=f"audio/{USER_A}/rec-a.m4a", Body=clip)
    corrupt = clip[:32] + bytes(range(256)) * 40
    s3.put_object(Bucket=cfg.bucket, Key=f"audio/{USER_B}/rec-b.m4a", Body=corrupt)
    tasks = {}
    for user, file_id, path in ((USER_A, "rec-a", "hooks/a"), (USER_B, "rec-b", "hooks/b")):
        callback = stack.receiver.url(path) + (f"?{A_SECRET_QUERY}" if user == USER_A else "")
        with cfg.client(stack.api, user, admin=False) as client:
            resp = client.post(
                f"/process_audio_v2/{user}",
                params={"file_id": file_id, "callback_url": callback},
            )
        assert resp.status_code == 200, resp.text
        tasks[user] = resp.json()["task_id"]
    return tasks


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    raise AssertionError(f"{name}{{{wanted}}} not in /metrics")


def task_ids(received: list[Any]) -> set[str]:
    return {r.json()["data"]["task_id"] for r in received}


def test_a_completed_task_is_delivered_signed_after_the_receiver_failed_first(
    stack: Stack, submitted: dict[str, str]
) -> None:
    (accepted,) = stack.receiver.wait_accepted("hooks/a", 1, timeout_s=180)
    attempts = stack.receiver.of("hooks/a")
    assert [a.answered for a in attempts] == [503] * FAIL_FIRST + [204]
    assert not stack.receiver.bad_signatures  # the receiver verified every attempt
    assert len({a.headers["webhook-id"] for a in attempts}) == 1  # one id: receivers dedupe
    assert accepted.query == A_SECRET_QUERY
    body = accepted.json()
    assert body["type"] == "task.completed"
    data = body["data"]
    assert (data["task_id"], data["user_id"], data["status"]) == (
        submitted[USER_A],
        USER_A,
        "completed",
    )
    assert data["transcript"]["word_count"] > 0
    assert data["transcript"]["transcript_uri"].endswith(".json")
    assert "text" not in data["transcript"]  # patient data: fetched with the API, not pushed
    with httpx.Client() as plain:
        text = plain.get(f"{stack.deliverer_url}/metrics").text
    assert (
        metric(text, "medvoice_webhook_deliveries_total", target="callback", outcome="retried")
        >= FAIL_FIRST
    )
    assert (
        metric(text, "medvoice_webhook_deliveries_total", target="callback", outcome="delivered")
        >= 1
    )
    assert (
        metric(text, "medvoice_webhook_failures_total", target="callback", reason="status_5xx")
        >= FAIL_FIRST
    )


def test_each_callback_gets_only_its_own_task_and_the_deployment_url_gets_all(
    stack: Stack, submitted: dict[str, str]
) -> None:
    # A's token may not submit for B (so may not name a callback for B's recordings).
    with stack.cfg.client(stack.api, USER_A, admin=False) as a:
        resp = a.post(
            f"/process_audio_v2/{USER_B}",
            params={"file_id": "rec-b", "callback_url": stack.receiver.url("hooks/stolen")},
        )
    assert resp.status_code == 403, resp.text
    (failed,) = stack.receiver.wait_accepted("hooks/b", 1, timeout_s=180)
    assert failed.json()["type"] == "task.failed"
    assert failed.json()["data"]["error"]["code"]
    stack.receiver.wait_accepted("hooks/a", 1, timeout_s=180)
    everything = stack.receiver.wait_accepted("deployment", 2, timeout_s=180)
    assert task_ids(everything) == {submitted[USER_A], submitted[USER_B]}
    assert task_ids(stack.receiver.accepted("hooks/a")) == {submitted[USER_A]}
    assert task_ids(stack.receiver.accepted("hooks/b")) == {submitted[USER_B]}
    assert stack.receiver.of("hooks/stolen") == []
    # The callback's query (a secret of the receiver's) is never logged at INFO.
    for proc in stack.processes:
        assert A_SECRET_QUERY not in proc.log_text(), proc.name


@pytest.mark.parametrize(
    ("callback", "reason"),
    [
        ("http://localhost/hooks/x", "must be an https"),
        ("https://example.com/hooks/x", "not in the allowed callback hosts"),
    ],
)
def test_the_api_refuses_bad_callbacks(stack: Stack, callback: str, reason: str) -> None:
    with stack.cfg.client(stack.api, USER_A, admin=False) as a:
        resp = a.post(
            f"/process_audio_v2/{USER_A}", params={"file_id": "rec-a", "callback_url": callback}
        )
    assert resp.status_code == 422
    assert reason in resp.json()["detail"]


def test_a_private_address_is_refused_at_submission(stack: Stack) -> None:
    """With MEDVOICE_WEBHOOKS__ALLOW_PRIVATE off (the default), a callback host resolving to
    loopback (or any private, link-local, multicast, reserved address) gets 422."""
    strict, url = start_api(stack.cfg, MEDVOICE_WEBHOOKS__ALLOW_PRIVATE="false")
    try:
        with stack.cfg.client(url, USER_A, admin=False) as a:
            resp = a.post(
                f"/process_audio_v2/{USER_A}",
                params={"file_id": "rec-a", "callback_url": stack.receiver.url("hooks/private")},
            )
    finally:
        strict.terminate()
    assert resp.status_code == 422
    assert "resolves to a loopback address" in resp.json()["detail"]
    assert stack.receiver.of("hooks/private") == []


async def test_tombstones_and_foreign_records_on_task_status_are_passed_over(stack: Stack) -> None:
    """An erased task's tombstone and a record that is no status do not stop the deliverer:
    the final status after them (same key, so the same partition, in order) is delivered."""
    key = str(uuid.uuid4())
    change = TaskStatusChanged(
        task_id=uuid.UUID(key),
        user_id=USER_A,
        file_id="rec-x",
        status=TaskStatus.FAILED,
        submitted_at=datetime.now(UTC),
        error=ErrorInfo(code="audio_undecodable", message="x"),
        callback_url=stack.receiver.url("hooks/after"),
    )
    await produce(
        stack.cfg.bootstrap,
        stack.cfg.topic("task.status"),
        [(key, None), (key, b"not a status"), (key, change.to_bytes())],  # type: ignore[list-item]
    )
    (accepted,) = stack.receiver.wait_accepted("hooks/after", 1, timeout_s=60)
    assert accepted.json()["data"]["task_id"] == key
    assert accepted.headers["webhook-id"] == str(change.event_id)
    assert stack.deliverer.alive()


def test_a_delivery_still_being_retried_survives_a_crash_of_the_deliverer(
    stack: Stack, submitted: dict[str, str]
) -> None:
    """Offsets are committed only once a delivery is done or given up: after a SIGKILL the
    next deliverer delivers it, with the same webhook-id. Runs last: it replaces the
    module's deliverer (with one delivery slot, so it also waits on a full slot)."""
    receiver = stack.receiver
    receiver.fail_first["hooks/crash"] = 1_000_000
    with stack.cfg.client(stack.api, USER_A, admin=False) as a:
        resp = a.post(
            f"/process_audio_v2/{USER_A}",
            params={"file_id": "rec-a", "callback_url": receiver.url("hooks/crash")},
        )
    assert resp.status_code == 200, resp.text
    task_id = resp.json()["task_id"]
    failed = receiver.wait_attempts("hooks/crash", 2, timeout_s=180)
    stack.deliverer.kill()
    receiver.fail_first["hooks/crash"] = len(receiver.of("hooks/crash")) + 2
    proc, url = start_deliverer(stack.cfg, MEDVOICE_WEBHOOKS__MAX_IN_FLIGHT="1")
    stack.processes.append(proc)
    stack.deliverer, stack.deliverer_url = proc, url
    (accepted,) = receiver.wait_accepted("hooks/crash", 1, timeout_s=180)
    assert accepted.json()["data"]["task_id"] == task_id
    assert accepted.headers["webhook-id"] == failed[0].headers["webhook-id"]
    # The deployment URL may get it twice (delivered before the crash, then again): one id.
    mine = [r for r in receiver.accepted("deployment") if r.json()["data"]["task_id"] == task_id]
    assert mine and {r.headers["webhook-id"] for r in mine} == {accepted.headers["webhook-id"]}
