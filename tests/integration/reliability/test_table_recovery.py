"""A worker restarted on its RocksDB store remembers what it finished (issue 12 item 4).

Real broker, real Faust worker with ``MEDVOICE_WORKER__STORE=rocksdb://``: a task completes,
the worker stops, the table's changelog is emptied (so only the local store can remember),
a worker starts on the same data directory, and the completed task delivered again is
skipped as a duplicate: no new status, no new TranscriptReady. A worker on the memory store
(or one whose store was lost along with the changelog) would transcribe it again.
"""

from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from processors.status_table import STATUS_TABLE
from tests.fixtures.audio import spoken_clip
from tests.fixtures.driver import StatusFollower, put_audio, submit_events, submitted
from tests.fixtures.stack import StackConfig, start_worker

TOPIC = ConfigResourceType.TOPIC
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
USER = "dr_restart"
SKIPPED = "duplicate delivery of a final task skipped"


async def empty_topic(bootstrap: str, topic: str, partitions: int) -> int:
    """Delete every record of compacted ``topic`` (its log start moves to its end; the
    broker deletes records only under the delete policy, so it is set for the while);
    returns how many."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(TOPIC, topic, {"cleanup.policy": "delete"})])
        await admin.delete_records(
            {tp: RecordsToDelete(ends[tp]) for tp in parts}, timeout_ms=10_000
        )
        await admin.alter_configs([ConfigResource(TOPIC, topic, {"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    return sum(ends[tp] - starts[tp] for tp in parts)


async def test_a_restarted_worker_skips_a_task_it_finished_before(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    state = tmp_path / "worker-state"
    env = {"MEDVOICE_WORKER__STORE": "rocksdb://", "MEDVOICE_WORKER__DATA_DIR": str(state)}
    put_audio(cfg, USER, "clip", "wav", spoken_clip("Blood pressure is normal.", "wav", tmp_path))
    done = submitted(USER, "clip", "wav")
    task_id = str(done.task_id)
    first, _ = start_worker(cfg, wait_ready=True, **env)
    try:
        async with StatusFollower(cfg) as status:
            await submit_events(cfg, [done])
            await status.wait(lambda: bool(status.finals(task_id)), 180, "the task final")
    finally:
        assert first.terminate() == 0, first.tail()
    assert [f["status"] for f in status.finals(task_id)] == ["completed"]
    assert any(state.rglob("*.sst")) or any(state.rglob("CURRENT")), "no RocksDB files"

    changelog = cfg.topic(f"medvoice-worker-{STATUS_TABLE}-changelog")
    assert (
        await empty_topic(cfg.bootstrap, changelog, cfg.partitions) >= 2
    )  # processing, then completed

    second, _ = start_worker(cfg, wait_ready=True, **env)
    try:
        fresh = submitted(USER, "clip", "wav")
        async with StatusFollower(cfg) as after, StatusFollower(cfg, "transcript.ready") as ready:
            await submit_events(cfg, [done, fresh])  # the finished task delivered again
            await after.wait(
                lambda: SKIPPED in second.log_text() and bool(after.finals(str(fresh.task_id))),
                180,
                "the redelivery skipped and the new task final",
            )
            await ready.wait(lambda: len(ready.records) >= 2, 30, "both TranscriptReady")
        records = after.by_task[task_id]
        assert [r["status"] for r in records] == ["processing", "completed"], records
        ready_for = [r.key.decode() for r in ready.records]
        assert ready_for.count(task_id) == 1 and ready_for.count(str(fresh.task_id)) == 1
        assert second.log_text().count(SKIPPED) == 1
    finally:
        assert second.terminate() == 0, second.tail()
