"""Submission-side guarantees: Idempotency-Key, size and duration limits, topic set-up."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.fixtures.audio import spoken_clip
from tests.fixtures.driver import StatusFollower
from tests.fixtures.processes import ManagedProcess
from tests.fixtures.stack import StackConfig, start_api
from tests.fixtures.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration
USER = "dr_contract"
MAX_AUDIO_S = 3.0  # the API's duration limit in this module
LONG_TEXT = "This sentence is spoken slowly enough to last well over three seconds in total."
SHORT_TEXT = "Short note."


# Submissions are served by the fast path by default; "false" runs FastAPI's route instead.
@pytest.fixture(params=["true", "false"], ids=["fast path", "route"])
def api(
    stack_config: StackConfig, request: pytest.FixtureRequest
) -> Iterator[tuple[ManagedProcess, httpx.Client]]:
    proc, url = start_api(
        stack_config,
        MEDVOICE_API__MAX_AUDIO_S=str(MAX_AUDIO_S),
        MEDVOICE_API__SUBMIT_FAST_PATH=request.param,
    )
    client = stack_config.client(url)
    try:
        yield proc, client
    finally:
        client.close()
        proc.terminate()


def upload(client: httpx.Client, data: bytes, ext: str) -> httpx.Response:
    return client.post(f"/uploads/{USER}", files={"file": (f"note.{ext}", data, "audio/mpeg")})


async def test_same_idempotency_key_gives_the_same_task_and_one_event(
    stack_config: StackConfig, api: tuple[ManagedProcess, httpx.Client], tmp_path: Path
) -> None:
    _, client = api
    file_id = upload(client, spoken_clip(SHORT_TEXT, "mp3", tmp_path), "mp3").json()["file_id"]
    params = {"file_id": file_id, "file_extension": "mp3"}

    def post(key: str) -> str:
        resp = client.post(
            f"/process_audio_v2/{USER}", params=params, headers={"Idempotency-Key": key}
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["task_id"])

    visit = uuid.uuid4().hex  # fresh keys: both paths under test claim their own
    first = await asyncio.to_thread(post, f"visit-{visit}-a")
    again = await asyncio.to_thread(post, f"visit-{visit}-a")
    other = await asyncio.to_thread(post, f"visit-{visit}-b")
    assert first == again and other != first
    async with StatusFollower(stack_config, "audio.submitted") as submitted:
        await submitted.wait(lambda: other in submitted.by_task, 30, "the second key's event")
        await submitted.poll()
    assert len(submitted.by_task[first]) == 1, "a repeated key publishes nothing"


def test_recordings_over_the_duration_limit_are_refused_with_413(
    api: tuple[ManagedProcess, httpx.Client], tmp_path: Path
) -> None:
    _, client = api
    resp = upload(client, spoken_clip(LONG_TEXT, "mp3", tmp_path), "mp3")
    assert resp.status_code == 413
    assert "s" in resp.json()["detail"] and str(int(MAX_AUDIO_S)) in resp.json()["detail"]
    assert upload(client, spoken_clip(SHORT_TEXT, "mp3", tmp_path), "mp3").status_code == 201


async def test_topics_are_created_with_partitions_and_compaction(
    stack_config: StackConfig, api: tuple[ManagedProcess, httpx.Client]
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_config.bootstrap)
    await admin.start()
    try:
        status_topic = stack_config.topic("task.status")
        described = await admin.describe_topics([stack_config.topic("audio.submitted")])
        assert len(described[0]["partitions"]) == stack_config.partitions
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, status_topic)]
        )
        entries = {name: value for name, value, *_ in configs[0].resources[0][4]}
        assert entries["cleanup.policy"] == "compact"
    finally:
        await admin.close()


def test_storage_outage_answers_503_not_500(stack_config: StackConfig, tmp_path: Path) -> None:
    port = int(stack_config.s3_url.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port)
    proxy.start()
    proc, url = start_api(stack_config, MEDVOICE_S3__ENDPOINT_URL=proxy.url)
    client = stack_config.client(url)
    try:
        file_id = upload(client, spoken_clip(SHORT_TEXT, "mp3", tmp_path), "mp3").json()["file_id"]
        params = {"file_id": file_id, "file_extension": "mp3"}
        assert client.post(f"/process_audio_v2/{USER}", params=params).status_code == 200
        proxy.cut()
        down = client.post(f"/process_audio_v2/{USER}", params=params)
        assert down.status_code == 503 and "retry" in down.json()["detail"]
        assert "127.0.0.1" not in down.text
        proxy.start()
        assert client.post(f"/process_audio_v2/{USER}", params=params).status_code == 200
    finally:
        client.close()
        proc.terminate()
        proxy.cut()
