"""``make dev`` speaks real Kafka: librdkafka clients (kcat, confluent-kafka) read its topics.

Against the embedded Tansu broker ``make dev`` used to run, kcat (librdkafka 2.0) fails with
"ApiVersionRequest failed: Local: Read underflow"; confluent-kafka 2.16's consumer got the
event only after ~23 s there (0.7 s from Apache Kafka).
"""

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer

from tests.fixtures.audio import speak_wav
from tests.fixtures.stack import is_final, wait_for_status
from tests.integration.dev.launcher import DevStack

pytestmark = pytest.mark.integration

SENTENCE = "The patient reports chest pain since yesterday evening."
USER = "dr_dev-01"
TOPIC = "transcript.ready"  # make dev runs without a topic prefix, as a developer sees it
DONE_TIMEOUT_S = 180.0
READ_TIMEOUT_S = 60.0
POLL_S = 0.3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """One dev stack for this module, as ``python -m tools.dev_stack`` starts it."""
    s = DevStack(tmp_path_factory.mktemp("dev-clients"))
    try:
        s.wait_ready()
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def completed(stack: DevStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A spoken recording uploaded and submitted (no token: make dev has auth off), done."""
    wav = speak_wav(SENTENCE, tmp_path_factory.mktemp("dev-audio") / "dictation.wav")
    with httpx.Client(base_url=stack.api, timeout=30.0) as client:
        up = client.post(
            f"/uploads/{USER}",
            params={"file_extension": "wav"},
            files={"file": ("dictation.wav", wav.read_bytes(), "audio/wav")},
        )
        assert up.status_code == 201, up.text
        sub = client.post(
            f"/process_audio_v2/{USER}",
            params={"file_id": up.json()["file_id"], "file_extension": "wav"},
        )
        assert sub.status_code == 200, sub.text
        task_id = sub.json()["task_id"]
        status = wait_for_status(client, task_id, is_final, timeout_s=DONE_TIMEOUT_S)
    assert status["status"] == "completed", status
    return dict(status)


def test_kcat_reads_the_transcript_ready_event(stack: DevStack, completed: dict[str, Any]) -> None:
    task_id = completed["task_id"]
    argv = ["kcat", "-b", stack.bootstrap, "-C", "-t", TOPIC, "-o", "beginning", "-e", "-J", "-q"]
    deadline = time.monotonic() + READ_TIMEOUT_S
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 0, run.stderr
        assert "Read underflow" not in run.stderr
        records = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        found = [r for r in records if r["key"] == task_id]
        if not found:
            time.sleep(POLL_S)  # the event follows the status; read again
    assert len(found) == 1, f"no TranscriptReady for {task_id} read by kcat in {READ_TIMEOUT_S} s"
    event = json.loads(found[0]["payload"])
    assert event["event_type"] == "TranscriptReady"
    assert event["task_id"] == task_id
    assert event["user_id"] == USER
    assert event["text"] == completed["transcript"]["text"]


def test_confluent_kafka_consumer_reads_the_transcript_ready_event(
    stack: DevStack, completed: dict[str, Any]
) -> None:
    task_id = completed["task_id"]
    errors: list[str] = []  # what librdkafka reports about the broker
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap,
            "group.id": f"dev-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "error_cb": lambda err: errors.append(str(err)),
        }
    )
    event: dict[str, Any] | None = None
    try:
        consumer.subscribe([TOPIC])
        deadline = time.monotonic() + READ_TIMEOUT_S
        while event is None and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            if msg.key() == task_id.encode():
                event = json.loads(msg.value() or b"null")
    finally:
        consumer.close()
    assert errors == []
    assert event is not None, f"no TranscriptReady for {task_id} consumed in {READ_TIMEOUT_S} s"
    assert event["event_type"] == "TranscriptReady"
    assert event["task_id"] == task_id
    assert event["text"] == completed["transcript"]["text"]


def test_the_broker_is_apache_kafka(stack: DevStack) -> None:
    """With a JVM and the jars present, make dev says it runs Apache Kafka, not the fallback."""
    out = stack.output()
    assert "Apache Kafka" in out
    assert "FALLBACK" not in out
    assert (stack.state / "kafka" / "data").is_dir()  # the broker's data lives under the state dir
