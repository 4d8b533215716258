"""Outages of S3 and of the Kafka broker, and SIGTERM of a worker mid-transcription.

The outages run twice: with the default worker (whisper, one task at a time) and with 32
tasks in flight against the Riva-protocol server's batching model.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.audio import spoken_clip
from tests.fixtures.driver import StatusFollower, put_audio, submit_events, submitted
from tests.fixtures.kafka_broker import KafkaBroker
from tests.fixtures.riva_server import BatchModel, RivaTestServer
from tests.fixtures.stack import StackConfig, is_final, start_api, start_worker, wait_for_status
from tests.fixtures.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
USER = "dr_outage"
SENTENCE = "The wound is healing well."
LONG_TEXT = " ".join(
    [
        "The patient was seen today for follow up of type two diabetes.",
        "Blood sugar readings at home have been between one hundred and one hundred forty.",
        "She reports no episodes of low blood sugar and no chest pain.",
        "Continue the current dose and return in three months with fasting labs.",
    ]
    * 2
)
PUBLISH_TIMEOUT_S = 3.0
RECOVERY_BOUND_S = 60.0  # after the broker is back, the API must accept work within this


@pytest.fixture(params=["one-at-a-time", "32-in-flight"])
def worker_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Settings of the worker under test: the default, or 32 in flight against Riva."""
    if request.param == "one-at-a-time":
        yield {}
        return
    with RivaTestServer(batching=BatchModel()) as server:
        yield {
            "MEDVOICE_ASR__BACKEND": "riva",
            "MEDVOICE_RIVA__URI": server.uri,
            "MEDVOICE_WORKER__MAX_IN_FLIGHT": "32",
        }


async def test_s3_outage_longer_than_a_backoff_fails_nothing(
    stack_config: StackConfig, tmp_path: Path, worker_env: dict[str, str]
) -> None:
    cfg = stack_config
    put_audio(cfg, USER, "clip", "m4a", spoken_clip(SENTENCE, "m4a", tmp_path))
    port = int(cfg.s3_url.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port)
    proxy.start()
    worker, web = start_worker(
        cfg,
        wait_ready=True,
        MEDVOICE_S3__ENDPOINT_URL=proxy.url,
        MEDVOICE_WORKER__MAX_ATTEMPTS="8",
        MEDVOICE_S3__CONNECT_TIMEOUT_S="0.5",
        MEDVOICE_S3__MAX_ATTEMPTS="1",
        **worker_env,
    )
    try:
        proxy.cut()
        events = [submitted(USER, "clip", "m4a") for _ in range(6)]
        ids = [str(e.task_id) for e in events]
        await submit_events(cfg, events)
        async with StatusFollower(cfg) as status:

            def retried_twice() -> bool:
                return all(
                    any(v.get("attempt", 0) >= 2 for v in status.by_task.get(t, [])) for t in ids
                )

            # Two attempts failed: the outage outlasts at least one full backoff.
            await status.wait(retried_twice, 90, "every task retried twice")
            assert status.done(ids) == 0
            proxy.start()
            await status.wait(lambda: status.done(ids) == len(ids), 120, "all final")
        for t in ids:
            assert [f["status"] for f in status.finals(t)] == ["completed"], status.finals(t)
        assert "medvoice_task_retries_total" in httpx.get(f"{web}/metrics").text
    finally:
        worker.terminate()
        proxy.cut()


async def test_broker_restart_mid_run(
    stack_config: StackConfig, tmp_path: Path, worker_env: dict[str, str]
) -> None:
    cfg = stack_config
    broker = KafkaBroker(tmp_path / "kafka")
    broker.start()
    cfg.bootstrap = broker.bootstrap
    put_audio(cfg, USER, "clip", "m4a", spoken_clip(SENTENCE, "m4a", tmp_path))
    worker, _ = start_worker(cfg, wait_ready=True, **worker_env)
    api, url = start_api(cfg, MEDVOICE_API__PUBLISH_TIMEOUT_S=str(PUBLISH_TIMEOUT_S))
    client = cfg.client(url)

    def submit() -> httpx.Response:
        return client.post(f"/process_audio_v2/{USER}", params={"file_id": "clip"})

    try:
        before = [submit().json()["task_id"] for _ in range(10)]
        wait_for_status(client, before[0], is_final)
        broker.stop()
        started = time.monotonic()
        down = submit()
        assert down.status_code == 500 and down.json()["detail"]
        assert time.monotonic() - started < PUBLISH_TIMEOUT_S + 2
        broker.start()
        deadline = time.monotonic() + RECOVERY_BOUND_S
        after: list[str] = []
        while time.monotonic() < deadline and not after:
            resp = submit()
            if resp.status_code == 200:
                after.append(resp.json()["task_id"])
        assert after, f"no 200 within {RECOVERY_BOUND_S} s of the broker's return"
        recovered_s = RECOVERY_BOUND_S - (deadline - time.monotonic())
        after += [submit().json()["task_id"] for _ in range(4)]
        for task_id in before + after:
            body = wait_for_status(client, task_id, is_final, timeout_s=180)
            assert body["status"] == "completed", body
        print(
            f"broker restart: submitted={len(before) + len(after)} lost=0 "
            f"api_recovered_s={recovered_s:.1f}"
        )
    finally:
        client.close()
        api.terminate()
        worker.terminate()
        broker.stop()


async def test_sigterm_during_transcription_loses_nothing(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    put_audio(cfg, USER, "long", "m4a", spoken_clip(LONG_TEXT, "m4a", tmp_path))
    worker, _ = start_worker(cfg, MEDVOICE_WHISPER__BEAM_SIZE="5")
    event = submitted(USER, "long", "m4a")
    task_id = str(event.task_id)
    await submit_events(cfg, [event])
    async with StatusFollower(cfg) as status:
        await status.wait(
            lambda: any(v["status"] == "processing" for v in status.by_task.get(task_id, [])),
            60,
            "the task in processing",
        )
        started = time.monotonic()
        code = worker.terminate(timeout_s=60)
        stopped_s = time.monotonic() - started
        assert code == 0, worker.tail()
        assert stopped_s < 45, "the worker must exit within its grace period"
        successor, _ = start_worker(cfg)
        try:
            await status.wait(lambda: bool(status.finals(task_id)), 180, "the task final")
        finally:
            successor.terminate()
    assert {f["status"] for f in status.finals(task_id)} == {"completed"}
    print(f"sigterm: stopped in {stopped_s:.1f} s, task completed, lost=0")
