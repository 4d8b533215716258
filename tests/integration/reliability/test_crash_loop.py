"""A task the worker dies in, again and again, is set aside instead of blocking its partition.

The worker is SIGKILLed (what an out-of-memory kill does) each time it is transcribing the
task; after MEDVOICE_WORKER__MAX_DELIVERIES such deliveries the next one dead-letters it as
``worker_crashed``, and the task behind it on the same partition completes.
"""

from pathlib import Path

import pytest

from tests.fixtures.audio import spoken_clip
from tests.fixtures.driver import StatusFollower, put_audio, submit_events, submitted
from tests.fixtures.stack import StackConfig, start_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
USER = "dr_crashloop"
MAX_DELIVERIES = 2
LONG_TEXT = " ".join(
    [
        "The patient was seen today for follow up of type two diabetes.",
        "Blood sugar readings at home have been between one hundred and one hundred forty.",
        "Continue the current dose and return in three months with fasting labs.",
    ]
    * 3
)
SHORT_TEXT = "Heart rate is regular."


async def test_a_task_that_keeps_killing_the_worker_is_dead_lettered(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    cfg.partitions = 1  # the next task waits behind the crashing one
    cfg.extra_env["MEDVOICE_WORKER__MAX_DELIVERIES"] = str(MAX_DELIVERIES)
    cfg.extra_env["MEDVOICE_WHISPER__BEAM_SIZE"] = "5"
    put_audio(cfg, USER, "long", "m4a", spoken_clip(LONG_TEXT, "m4a", tmp_path))
    put_audio(cfg, USER, "short", "m4a", spoken_clip(SHORT_TEXT, "m4a", tmp_path))
    before = submitted(USER, "short", "m4a")
    crashing = submitted(USER, "long", "m4a")
    behind = submitted(USER, "short", "m4a")
    crash_id, behind_id = str(crashing.task_id), str(behind.task_id)

    async with StatusFollower(cfg) as status, StatusFollower(cfg, "audio.submitted.dlq") as dlq:
        # A partition in service: a task done and its offset committed before the crashes.
        worker, _ = start_worker(cfg)
        try:
            await submit_events(cfg, [before])
            await status.wait(lambda: bool(status.finals(str(before.task_id))), 180, "warm-up")
        finally:
            worker.terminate()
        await submit_events(cfg, [crashing, behind])

        def processing_seen() -> int:
            return sum(1 for v in status.by_task.get(crash_id, []) if v["status"] == "processing")

        for delivery in range(1, MAX_DELIVERIES + 1):
            worker, _ = start_worker(cfg)
            try:
                await status.wait(
                    lambda n=delivery: processing_seen() >= n, 180, f"delivery {delivery} begun"
                )
            finally:
                worker.kill()  # dies mid-transcription, like an OOM kill
            assert not status.finals(crash_id)

        last, _ = start_worker(cfg)
        try:
            await status.wait(lambda: bool(status.finals(crash_id)), 180, "the task final")
            await status.wait(lambda: bool(status.finals(behind_id)), 180, "the next task final")
            await dlq.wait(lambda: bool(dlq.records), 30, "the dead letter")
        finally:
            last.terminate()

    (final,) = status.finals(crash_id)
    assert final["status"] == "failed" and final["error"]["code"] == "worker_crashed", final
    assert processing_seen() == MAX_DELIVERIES, "not run again after the limit"
    (dead,) = dlq.records
    assert dead.value == crashing.to_bytes() and dead.key == crash_id.encode()
    assert dict(dead.headers)["medvoice.error.code"] == b"worker_crashed"
    assert [f["status"] for f in status.finals(behind_id)] == ["completed"]
