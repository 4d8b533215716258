"""The worker's table keeps entries as long as a task's status, then tombstones them.

Real broker and worker on ``rocksdb://``: the table's changelog holds entries last written
400 days ago, fresh ones, and one in the JSON format of an older worker. The worker
recovers them, and its retention sweep (``MEDVOICE_RETENTION__TRANSCRIPTS_DAYS``, 365 by
default; every second here) deletes exactly the old ones, each with a tombstone on the
changelog, and rewrites the JSON entry in the current format (its retention starts then).
"""

import json
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from faust.serializers import codecs

from processors.status_table import ENTRY_CODEC, STATUS_TABLE
from tests.fixtures.stack import StackConfig, read_topic, start_worker
from tests.fixtures.topic_reader import create_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
JSON = codecs.get_codec("json")
SWEPT = "status table entries past their retention deleted"
FINISHED = {"status": "completed", "attempt": 0, "replay": 0, "transcript_published": True}


def table_key(task_id: str) -> bytes:
    return JSON.dumps(task_id)  # as Faust writes the table's keys


async def test_entries_past_the_retention_are_tombstoned_and_only_those(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    changelog = cfg.topic(f"medvoice-worker-{STATUS_TABLE}-changelog")
    await create_topic(cfg.bootstrap, changelog, cfg.partitions, cleanup_policy="compact")
    now = time.time()
    old = [str(uuid.uuid4()) for _ in range(3)]
    fresh = [str(uuid.uuid4()) for _ in range(3)]
    legacy = str(uuid.uuid4())
    records = [(t, ENTRY_CODEC.dumps({**FINISHED, "at": now - 400 * 86_400})) for t in old]
    records += [(t, ENTRY_CODEC.dumps({**FINISHED, "at": now - 300 * 86_400})) for t in fresh]
    records.append((legacy, JSON.dumps(FINISHED)))
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, acks="all")
    await producer.start()
    try:
        for n, (task_id, value) in enumerate(records):
            partition = n % cfg.partitions
            await producer.send_and_wait(changelog, value, table_key(task_id), partition=partition)
    finally:
        await producer.stop()

    worker, _ = start_worker(
        cfg,
        MEDVOICE_WORKER__STORE="rocksdb://",
        MEDVOICE_WORKER__DATA_DIR=str(tmp_path / "state"),
        MEDVOICE_RETENTION__SWEEP_INTERVAL_S="1",
    )
    try:
        after = await read_topic(
            cfg.bootstrap, changelog, lambda rs: len(rs) >= len(records) + len(old) + 1, 120
        )
        swept = [json.loads(ln) for ln in worker.log_text().splitlines() if SWEPT in ln]
    finally:
        worker.terminate()
    by_key: dict[str, list[bytes | None]] = {}
    for rec in after:
        by_key.setdefault(json.loads(rec.key), []).append(rec.value)
    tombstoned = {k for k, values in by_key.items() if values[-1] is None}
    assert tombstoned == set(old)
    assert all(len(by_key[t]) == 1 for t in fresh), "a fresh entry was written again"
    (first, rewritten) = by_key[legacy]
    assert first == JSON.dumps(FINISHED) and rewritten is not None and len(rewritten) == 14
    assert ENTRY_CODEC.loads(rewritten)["at"] >= int(now)
    assert swept and swept[0]["count"] == len(old)
