"""Malformed records on ``audio.submitted`` (null header values, keys that are not UTF-8) go
to the dead-letter topic with their original bytes, and the partition's next task completes.

A raw aiokafka producer writes them: the API never would, but Kafka allows them.
"""

from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from tests.fixtures.audio import spoken_clip
from tests.fixtures.driver import StatusFollower, put_audio, submitted
from tests.fixtures.stack import StackConfig, start_worker

pytestmark = pytest.mark.integration
USER = "dr_poison"
SENTENCE = "The lungs are clear."


async def test_malformed_records_are_dead_lettered_and_the_partition_goes_on(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    cfg.partitions = 1  # everything on one partition: a stuck record would hold the good task
    put_audio(cfg, USER, "clip", "m4a", spoken_clip(SENTENCE, "m4a", tmp_path))
    worker, web = start_worker(cfg)
    null_header = submitted(USER, "clip", "m4a")
    bad_key = submitted(USER, "clip", "m4a")
    good = submitted(USER, "clip", "m4a")
    poison = [
        (str(null_header.task_id).encode(), null_header.to_bytes(), [("traceparent", None)]),
        (b"\xff\xfe\x80 not utf-8", bad_key.to_bytes(), []),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, headers in poison:
            await producer.send_and_wait(
                cfg.topic("audio.submitted"), value, key=key, headers=headers
            )
        await producer.send_and_wait(
            cfg.topic("audio.submitted"), good.to_bytes(), key=str(good.task_id).encode()
        )
    finally:
        await producer.stop()
    try:
        async with StatusFollower(cfg) as status, StatusFollower(cfg, "audio.submitted.dlq") as dlq:
            good_id = str(good.task_id)
            await status.wait(lambda: bool(status.finals(good_id)), 120, "the good task final")
            await dlq.wait(lambda: len(dlq.records) >= len(poison), 30, "poison in the DLQ")
        assert [f["status"] for f in status.finals(good_id)] == ["completed"]
        assert sorted((r.key, r.value) for r in dlq.records) == sorted(
            (key, value) for key, value, _ in poison
        ), "original key and value bytes"
        for rec in dlq.records:
            assert dict(rec.headers)["medvoice.error.code"] == b"invalid_event"
        for task in (null_header, bad_key):
            assert not status.finals(str(task.task_id)), "poison is not run as a task"
        assert worker.alive(), "the worker keeps going"
        assert httpx.get(f"{web}/healthz").status_code == 200
    finally:
        worker.terminate()
