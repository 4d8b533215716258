"""A worker killed mid-run: every accepted task still completes, once, correctly."""

import json
import time
from pathlib import Path

import jiwer
import pytest

from tests.fixtures.audio import spoken_clip
from tests.fixtures.driver import StatusFollower, put_audio, submit_events, submitted
from tests.fixtures.stack import StackConfig, start_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
USER = "dr_crash"
SENTENCE = "Heart rate is regular."
TASKS = 200
KILL_AFTER = 40  # completions before the SIGKILL: mid-run, with work still queued on both
MAX_WER = 0.25


def normalise(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace()).strip()


async def test_sigkill_one_of_two_workers_loses_nothing(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    cfg.partitions = 4
    put_audio(cfg, USER, "clip", "m4a", spoken_clip(SENTENCE, "m4a", tmp_path))
    victim, _ = start_worker(cfg)
    survivor, _ = start_worker(cfg)
    try:
        events = [submitted(USER, "clip", "m4a") for _ in range(TASKS)]
        ids = [str(e.task_id) for e in events]
        await submit_events(cfg, events)
        async with StatusFollower(cfg) as status, StatusFollower(cfg, "transcript.ready") as ready:
            await status.wait(lambda: status.done(ids) >= KILL_AFTER, 240, f"{KILL_AFTER} done")
            victim.kill()
            killed_at = time.monotonic()
            done_at_kill = status.done(ids)
            await status.wait(lambda: status.done(ids) == TASKS, 400, "all tasks final")
            takeover_s = time.monotonic() - killed_at
            await ready.wait(
                lambda: len({json.loads(r.value)["task_id"] for r in ready.records}) >= TASKS,
                60,
                "all TranscriptReady",
            )

        assert done_at_kill < TASKS, "the kill must happen mid-run"
        for task_id in ids:
            finals = status.finals(task_id)
            assert {f["status"] for f in finals} == {"completed"}, (task_id, finals)
        texts: dict[str, set[str]] = {}
        for rec in ready.records:
            value = json.loads(rec.value)
            texts.setdefault(value["task_id"], set()).add(value["text"])
        assert set(texts) == set(ids)
        # A redelivered task may emit TranscriptReady again, but never different content.
        assert all(len(t) == 1 for t in texts.values())
        for (text,) in texts.values():
            assert jiwer.wer(normalise(SENTENCE), normalise(text)) <= MAX_WER, text
        duplicates = sum(len(status.finals(t)) - 1 for t in ids)
        print(
            f"submitted={TASKS} completed={TASKS} lost=0 duplicate_finals={duplicates} "
            f"done_at_kill={done_at_kill} takeover_s={takeover_s:.1f}"
        )
        assert survivor.alive()
    finally:
        victim.kill()
        survivor.terminate()
