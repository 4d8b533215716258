"""The consumers in examples/ read TranscriptReady from the real broker, once per task."""

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from medvoice_common import cloudevents
from schemas.events import TaskStatusChanged, TranscriptReady
from schemas.status import TaskStatus
from tests.fixtures.kafka_broker import KafkaBroker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ["transcripts_aiokafka.py", "transcripts_confluent.py"]


def _ready(task_id: uuid.UUID) -> TranscriptReady:
    now = datetime.now(UTC)
    return TranscriptReady(
        task_id=task_id,
        user_id="dr_a",
        file_id="f1",
        transcript_uri=f"s3://medvoice/transcripts/dr_a/{task_id}.json",
        text="The patient reports chest pain.",
        language="en",
        duration_s=3.0,
        word_count=5,
        backend="whisper",
        model="tiny.en",
        submitted_at=now,
    )


async def _publish(
    bootstrap: str, name: str, events: list[TranscriptReady | TaskStatusChanged]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            headers = list(cloudevents.headers(event, cloudevents.WORKER_SOURCE).items())
            key = str(event.task_id).encode()
            await producer.send_and_wait(name, event.to_bytes(), key=key, headers=headers)
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def topic(kafka_broker: KafkaBroker) -> tuple[str, list[TranscriptReady]]:
    """A topic with: task A, task A again (a redelivery: new event_id), a status event, task B."""
    name = f"examples-{uuid.uuid4().hex[:8]}.transcript.ready"
    a, b = uuid.uuid4(), uuid.uuid4()
    first_a, again_a, only_b = _ready(a), _ready(a), _ready(b)
    status = TaskStatusChanged(
        task_id=b,
        user_id="dr_a",
        file_id="f1",
        status=TaskStatus.COMPLETED,
        submitted_at=datetime.now(UTC),
    )
    asyncio.run(_publish(kafka_broker.bootstrap, name, [first_a, again_a, status, only_b]))
    return name, [first_a, only_b]


@pytest.mark.parametrize("script", EXAMPLES)
def test_example_prints_each_task_once(
    script: str, topic: tuple[str, list[TranscriptReady]], kafka_broker: KafkaBroker
) -> None:
    name, expected = topic
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / script),
            "--bootstrap",
            kafka_broker.bootstrap,
            "--topic",
            name,
            "--group",
            f"example-{uuid.uuid4().hex[:8]}",
            "--max-tasks",  # without deduplication the two lines would both be task A
            "2",
            "--idle-s",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT / "examples",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["task_id"] for line in lines] == [str(e.task_id) for e in expected]
    assert [line["ce_id"] for line in lines] == [str(e.event_id) for e in expected]
    assert all("text" not in line for line in lines)  # patient data only with --show-text
