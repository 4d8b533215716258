"""SIGTERM and rebalances do not wait for a whole transcription: the in-flight task gets half
of MEDVOICE_WORKER__SHUTDOWN_GRACE_S, then is cancelled and delivered again (idempotently)."""

import json
from pathlib import Path

import httpx
import pytest

from tests.fixtures.audio import spoken_clip
from tests.fixtures.driver import StatusFollower, put_audio, submit_events, submitted
from tests.fixtures.processes import ManagedProcess
from tests.fixtures.stack import StackConfig, start_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
USER = "dr_bounds"
# Minutes of speech: transcribing it (beam 5) outlasts the grace period below.
LONG_TEXT = " ".join(
    [
        "The patient was seen today for follow up of type two diabetes.",
        "Blood sugar readings at home have been between one hundred and one hundred forty.",
        "She reports no episodes of low blood sugar and no chest pain.",
        "Continue the current dose and return in three months with fasting labs.",
    ]
    * 12
)
# The in-flight task gets 3 s; Faust's own stop takes about 2 s more (its loop shutdown).
GRACE_S = "6"


def log_events(proc: ManagedProcess, message: str) -> list[dict[str, object]]:
    """The worker's JSON log lines with ``message``."""
    found = []
    for line in proc.log_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("msg") == message:
            found.append(record)
    return found


def transcribed(proc: ManagedProcess, task_id: str) -> bool:
    return any(r.get("task_id") == task_id for r in log_events(proc, "transcribed"))


async def test_sigterm_cancels_a_long_transcription_instead_of_waiting_for_it(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    put_audio(cfg, USER, "long", "m4a", spoken_clip(LONG_TEXT, "m4a", tmp_path))
    worker, _ = start_worker(
        cfg, MEDVOICE_WHISPER__BEAM_SIZE="5", MEDVOICE_WORKER__SHUTDOWN_GRACE_S=GRACE_S
    )
    event = submitted(USER, "long", "m4a")
    task_id = str(event.task_id)
    await submit_events(cfg, [event])
    async with StatusFollower(cfg) as status:
        await status.wait(
            lambda: any(v["status"] == "processing" for v in status.by_task.get(task_id, [])),
            60,
            "the task in processing",
        )
        code = worker.terminate(timeout_s=120)
        assert code == 0, worker.tail()
        assert not transcribed(worker, task_id), "the worker waited for the whole transcription"
        assert log_events(worker, "in-flight task cancelled; it will be delivered again")
        await status.poll()
        assert not status.finals(task_id)
        successor, _ = start_worker(cfg)
        try:
            await status.wait(lambda: bool(status.finals(task_id)), 300, "the task final")
        finally:
            successor.terminate()
    assert [f["status"] for f in status.finals(task_id)] == ["completed"]


async def test_a_rebalance_does_not_wait_for_a_long_transcription(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    put_audio(cfg, USER, "long", "m4a", spoken_clip(LONG_TEXT, "m4a", tmp_path))
    first, _ = start_worker(
        cfg, MEDVOICE_WHISPER__BEAM_SIZE="5", MEDVOICE_WORKER__SHUTDOWN_GRACE_S=GRACE_S
    )
    second: ManagedProcess | None = None
    event = submitted(USER, "long", "m4a")
    task_id = str(event.task_id)
    await submit_events(cfg, [event])
    try:
        async with StatusFollower(cfg) as status:
            await status.wait(
                lambda: any(v["status"] == "processing" for v in status.by_task.get(task_id, [])),
                60,
                "the task in processing",
            )
            # A second worker joins: the group rebalances while the first transcribes.
            second, web = start_worker(cfg, wait_ready=False)
            second.wait_http(f"{web}/readyz", timeout_s=300)  # ready = partitions assigned
            assert not transcribed(first, task_id), "the rebalance waited for the transcription"
            assert log_events(first, "in-flight task cancelled; it will be delivered again")
            await status.wait(lambda: bool(status.finals(task_id)), 400, "the task final")
            assert [f["status"] for f in status.finals(task_id)] == ["completed"]
            assert httpx.get(f"{web}/healthz").status_code == 200
    finally:
        first.terminate()
        if second is not None:
            second.terminate()
