"""Submissions while Kafka fails, on a broker of this module's own (stopped, paused, killed
API processes): a task id is answered only for a task Kafka acknowledged, and a retry with
the same Idempotency-Key never makes a second task, even when a timed-out publish was
delivered after all."""

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from medvoice_common.s3 import object_exists
from producer_api.idempotency import claim_key
from tests.fixtures.fake_api import M4A_HEAD
from tests.fixtures.kafka_broker import KafkaBroker
from tests.fixtures.stack import StackConfig, start_api
from tests.fixtures.topic_reader import read_to_end, task_ids

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
USER = "dr_faults"
PUBLISH_TIMEOUT_S = 2.0
LEASE_S = 3 * PUBLISH_TIMEOUT_S  # producer_api.idempotency.LEASE_PER_PUBLISH_TIMEOUT
RETRY_BOUND_S = 60.0
POLL_S = 0.3


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    b = KafkaBroker(tmp_path_factory.mktemp("faults-kafka"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def cfg(broker: KafkaBroker, s3_endpoint: str, tmp_path: Path) -> StackConfig:
    c = StackConfig(broker.bootstrap, s3_endpoint, tmp_path)
    c.extra_env["MEDVOICE_API__PUBLISH_TIMEOUT_S"] = str(PUBLISH_TIMEOUT_S)
    return c


def store_recording(cfg: StackConfig, file_id: str) -> None:
    cfg.s3().put_object(
        Bucket=cfg.bucket, Key=f"audio/{USER}/{file_id}.m4a", Body=M4A_HEAD + bytes(256)
    )


def submit(url: str, cfg: StackConfig, key: str, file_id: str) -> httpx.Response:
    with cfg.client(url, USER, admin=False) as client:
        return client.post(
            f"/process_audio_v2/{USER}",
            params={"file_id": file_id},
            headers={"Idempotency-Key": key},
        )


def in_background(call: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[Any]]:
    """Run ``call`` in a thread; its response (or transport error) lands in the list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except httpx.TransportError as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def claimed(cfg: StackConfig, key: str) -> bool:
    """Whether the API has written its claim of ``key`` (its publish is under way)."""
    return object_exists(cfg.s3(), cfg.bucket, claim_key(USER, key))


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)  # polling S3 or the API for the condition


def retry_until_answered(url: str, cfg: StackConfig, key: str, file_id: str) -> str:
    """Retry a submission as a client would, until it gets a task id (409/500: retry)."""
    deadline = time.monotonic() + RETRY_BOUND_S
    while time.monotonic() < deadline:
        resp = submit(url, cfg, key, file_id)
        if resp.status_code == 200:
            return str(resp.json()["task_id"])
        assert resp.status_code in (409, 500), resp.text
        time.sleep(POLL_S)  # the client's back-off between retries
    raise AssertionError(f"no task id for key {key} within {RETRY_BOUND_S} s")


async def test_a_task_id_is_answered_only_for_a_task_kafka_acknowledged(
    broker: KafkaBroker, cfg: StackConfig
) -> None:
    first, url = start_api(cfg)
    store_recording(cfg, "rec1")
    answered: dict[str, str] = {}  # what a client was told: who -> task id
    try:
        broker.stop()
        # A request whose publish cannot be acknowledged, and one with the same key meanwhile.
        thread, out = in_background(lambda: submit(url, cfg, "visit-a", "rec1"))
        wait_until(lambda: claimed(cfg, "visit-a"), "the first request's claim")
        concurrent = submit(url, cfg, "visit-a", "rec1")
        if concurrent.status_code == 200:
            answered["concurrent request"] = concurrent.json()["task_id"]
        thread.join()
        assert isinstance(out[0], httpx.Response) and out[0].status_code == 500, out
        # A process killed between its claim and Kafka's answer.
        thread, out = in_background(lambda: submit(url, cfg, "visit-b", "rec1"))
        wait_until(lambda: claimed(cfg, "visit-b"), "the second key's claim")
        first.kill()
        thread.join()
    finally:
        first.kill()
        broker.start()
    second, url = start_api(cfg)
    try:
        answered["retry of visit-a"] = retry_until_answered(url, cfg, "visit-a", "rec1")
        answered["retry of visit-b"] = retry_until_answered(url, cfg, "visit-b", "rec1")
        published = set(task_ids(await read_to_end(cfg.bootstrap, cfg.topic("audio.submitted"))))
        phantoms = {who: t for who, t in answered.items() if t not in published}
        assert not phantoms, f"task ids answered for tasks never published: {phantoms}"
        # The concurrent request was told to come back (409 while the first one's lease
        # runs; 500 if, on a very slow machine, it arrived after the lease and tried itself).
        assert concurrent.status_code in (409, 500), concurrent.text
        if concurrent.status_code == 409:
            assert int(concurrent.headers["Retry-After"]) >= 1
        with cfg.client(url, USER, admin=False) as client:
            for task in answered.values():
                assert client.get(f"/tasks/{task}").status_code == 200
    finally:
        second.terminate()


async def test_a_timed_out_publish_and_its_retries_make_one_task(
    broker: KafkaBroker, cfg: StackConfig
) -> None:
    api, url = start_api(cfg)
    store_recording(cfg, "rec2")
    pid = broker._proc.pid if broker._proc else 0  # the broker's JVM, to pause it
    try:
        # The broker hangs: the request times out, but what reached the broker's socket is
        # still written once it resumes (a timeout stops the wait, not the send).
        os.kill(pid, signal.SIGSTOP)
        try:
            timed_out = submit(url, cfg, "visit-c", "rec2")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert timed_out.status_code == 500, timed_out.text
        task = retry_until_answered(url, cfg, "visit-c", "rec2")
        again = submit(url, cfg, "visit-c", "rec2")
        assert again.status_code == 200 and again.json()["task_id"] == task
    finally:
        api.terminate()  # a clean stop flushes what its producer still holds: all is settled
    work = task_ids(await read_to_end(cfg.bootstrap, cfg.topic("audio.submitted")))
    assert work and set(work) == {task}, f"one key, tasks {sorted(set(work))}"
    assert "Idempotency-Key" in timed_out.json()["detail"]  # the client is told to retry
