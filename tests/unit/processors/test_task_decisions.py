"""The worker's decisions, each where it lives: TaskProcessor with an in-memory status table,
recording output topics and a scripted pipeline (no broker, no ASR).

What these rules do on a real broker (redelivery after a crash, commits, rebalances) is what
tests/integration/reliability checks.
"""

import asyncio
from typing import Any

from processors.errors import ErrorCode, TaskError
from processors.pipeline import PipelineContext
from processors.records import ATTEMPT, ERROR_CAUSE, ERROR_CODE, REPLAY
from schemas.events import AudioSubmitted
from schemas.transcript import TranscriptDocument
from tests.unit.processors.harness import (
    Harness,
    document,
    event,
    submitted_event,
    task,
    transcribes,
)

# -- outcomes -------------------------------------------------------------------------------


async def test_a_task_completes_with_one_transcript_ready_before_its_completed_status() -> None:
    h = Harness()
    sub = task()
    await h.deliver(submitted_event(sub, offset=4))
    assert h.statuses(sub) == ["processing", "completed"]
    assert len(h.ready_for(sub)) == 1
    assert h.table[str(sub.task_id)]["transcript_published"] is True
    assert h.offsets.finished_at == [4]


async def test_a_transient_error_is_retried_then_dead_lettered_and_failed() -> None:
    async def storage_down(ctx: PipelineContext, sub: AudioSubmitted) -> Any:
        raise TaskError(ErrorCode.STORAGE_UNAVAILABLE, "Storage unavailable.", transient=True)

    h = Harness(storage_down, max_attempts=3)
    sub = task()
    await h.deliver(submitted_event(sub))
    await h.deliver_retries()
    assert [r.headers[ATTEMPT] for r in h.topics["retry"].sent] == [b"1", b"2"]
    (dead,) = h.topics["dlq"].sent
    assert dead.value == sub.to_bytes()
    assert dead.headers[ERROR_CODE] == b"retries_exhausted"
    assert dead.headers[ERROR_CAUSE] == b"storage_unavailable"
    assert h.statuses(sub)[-1] == "failed"
    assert h.table[str(sub.task_id)]["status"] == "failed"


async def test_a_permanent_error_fails_the_task_without_a_retry() -> None:
    async def undecodable(ctx: PipelineContext, sub: AudioSubmitted) -> Any:
        raise TaskError(ErrorCode.AUDIO_UNDECODABLE, "The file could not be decoded.")

    h = Harness(undecodable)
    sub = task()
    await h.deliver(submitted_event(sub))
    assert h.statuses(sub) == ["processing", "failed"]
    assert not h.topics["retry"].sent and not h.topics["dlq"].sent
    assert h.topics["status"].sent[-1].json()["error"]["code"] == "audio_undecodable"


async def test_a_duplicate_of_a_final_task_is_skipped_and_a_replay_runs_it_again() -> None:
    runs: list[str] = []

    async def counted(ctx: PipelineContext, sub: AudioSubmitted) -> Any:
        runs.append(str(sub.task_id))
        return document(sub), True

    h = Harness(counted)
    sub = task()
    await h.deliver(submitted_event(sub, offset=0))
    await h.deliver(submitted_event(sub, offset=1))
    assert len(runs) == 1 and len(h.ready_for(sub)) == 1
    assert h.offsets.finished_at == [0, 1], "a duplicate is an outcome too"
    await h.deliver(submitted_event(sub, offset=2, headers=[(REPLAY, b"1")]))
    assert len(runs) == 2, "a replayed task runs again"
    assert h.topics["status"].sent[-1].json()["replay"] == 1


# -- item 3: a TranscriptReady is never lost ------------------------------------------------


async def test_a_failed_transcript_ready_send_is_retried_until_it_is_on_the_topic() -> None:
    h = Harness()
    h.topics["ready"].fail = 1  # the broker does not acknowledge the first TranscriptReady
    sub = task()
    await h.deliver(submitted_event(sub))
    assert "completed" not in h.statuses(sub), "completed only after TranscriptReady is out"
    await h.deliver_retries()
    assert len(h.ready_for(sub)) == 1
    assert h.statuses(sub)[-1] == "completed"
    assert h.table[str(sub.task_id)]["transcript_published"] is True


async def test_a_completed_task_without_an_acknowledged_ready_gets_it_on_redelivery() -> None:
    h = Harness()
    sub = task()
    # What a worker before this rule left: completed, TranscriptReady never acknowledged.
    h.table[str(sub.task_id)] = {"status": "completed", "attempt": 0, "replay": 0}
    await h.deliver(submitted_event(sub))
    (ready,) = h.ready_for(sub)
    assert ready.json()["text"] == "Blood pressure is normal."
    assert h.table[str(sub.task_id)]["transcript_published"] is True
    assert h.statuses(sub) == [], "the task's status is not sent again"
    await h.deliver(submitted_event(sub, offset=1))
    assert len(h.ready_for(sub)) == 1, "once acknowledged, later deliveries are duplicates"


# -- item 4: malformed records are poison ----------------------------------------------------


async def test_a_null_header_value_is_poison_dead_lettered_with_its_original_bytes() -> None:
    h = Harness()
    sub = task()
    key = str(sub.task_id).encode()
    await h.deliver(submitted_event(sub, headers=[("traceparent", None)], offset=3))
    (dead,) = h.topics["dlq"].sent
    assert (dead.key, dead.value) == (key, sub.to_bytes())
    assert dead.headers[ERROR_CODE] == b"invalid_event"
    assert h.statuses(sub) == [] and h.stops == 0 and h.liveness.ok
    assert h.offsets.finished_at == [3]
    good = task()
    await h.deliver(submitted_event(good, offset=4))
    assert h.statuses(good)[-1] == "completed", "the worker goes on"


async def test_a_key_that_is_not_utf8_or_not_the_task_id_is_poison() -> None:
    h = Harness()
    sub = task()
    await h.deliver(submitted_event(sub, key=b"\xff\xfe\x00bad"))
    await h.deliver(submitted_event(sub, key=None, offset=1))
    await h.deliver(submitted_event(sub, key=str(task().task_id).encode(), offset=2))
    keys = [r.key for r in h.topics["dlq"].sent]
    assert keys[0] == b"\xff\xfe\x00bad", "the key's bytes are kept as they were"
    assert keys[1] is None
    assert len(keys) == 3 and not h.topics["ready"].sent


async def test_poison_values_keep_their_bytes_including_a_tombstone() -> None:
    h = Harness()
    await h.deliver(event(b"\xff not json", key=b"k"))
    await h.deliver(event(None, key=b"k2", offset=1))
    assert [(r.key, r.value) for r in h.topics["dlq"].sent] == [
        (b"k", b"\xff not json"),
        (b"k2", None),
    ]


async def test_a_record_that_can_be_neither_handled_nor_rerouted_stops_the_worker() -> None:
    async def bug(ctx: PipelineContext, sub: AudioSubmitted) -> Any:
        raise RuntimeError("a bug")

    h = Harness(bug)
    h.topics["retry"].fail = 1  # and Kafka refuses the reroute
    sub = task()
    await asyncio.wait_for(h.deliver(submitted_event(sub, offset=9)), 5)
    assert h.stops == 1, "the worker asks itself to stop"
    assert not h.liveness.ok, "/healthz reports it before the process ends"
    assert h.hard_exit.armed_for == ["cannot make progress"]
    assert h.offsets.finished_at == [], "not finished: never committed, delivered again"
    later = task()
    await h.deliver(submitted_event(later, offset=10))
    assert h.offsets.started_at == [9], "nothing more is taken while stopping"


# -- item 5: rebalances and shutdown do not wait for the whole transcription ------------------


async def test_a_rebalance_cancels_in_flight_work_after_half_the_grace_period() -> None:
    gate = asyncio.Event()

    async def long_transcription(ctx: PipelineContext, sub: AudioSubmitted) -> Any:
        await gate.wait()  # a recording that takes longer than any grace period
        return document(sub), True

    h = Harness(long_transcription, shutdown_grace_s=0.2)
    sub = task()
    handling = asyncio.create_task(h.deliver(submitted_event(sub, offset=5)))
    await _until(lambda: h.statuses(sub) == ["processing"])
    h.processor._loop = asyncio.get_running_loop()
    h.processor.on_rebalance()
    await asyncio.wait_for(handling, 5)
    assert h.offsets.finished_at == [], "cut short: not committed, delivered again"
    assert not h.ready_for(sub)
    entry = h.table[str(sub.task_id)]
    assert entry["unfinished"] == 0, "an interruption is not a crash"
    assert h.liveness.ok and h.stops == 0


async def test_work_that_finishes_within_the_drain_is_not_cancelled() -> None:
    async def quick(ctx: PipelineContext, sub: AudioSubmitted) -> Any:
        await asyncio.sleep(0.05)
        return document(sub), True

    h = Harness(quick, shutdown_grace_s=10)
    sub = task()
    handling = asyncio.create_task(h.deliver(submitted_event(sub, offset=1)))
    await _until(lambda: h.statuses(sub) == ["processing"])
    h.processor.begin_shutdown()
    await asyncio.wait_for(handling, 5)
    assert h.statuses(sub)[-1] == "completed" and h.offsets.finished_at == [1]
    assert h.hard_exit.armed_for == ["shutdown"], "the whole stop is bounded"
    await h.deliver(submitted_event(task(), offset=2))
    assert h.offsets.started_at == [1], "no new work once the shutdown began"


async def test_a_retry_waiting_for_its_backoff_is_released_at_once() -> None:
    h = Harness(shutdown_grace_s=3600)
    sub = task()
    far = str(10**13).encode()  # due in centuries
    ev = submitted_event(sub, headers=[("medvoice.not-before-ms", far)], offset=2)
    handling = asyncio.create_task(h.deliver(ev, retry=True))
    await _until(lambda: bool(h.processor._waiting))
    h.processor._loop = asyncio.get_running_loop()
    h.processor.on_rebalance()
    await asyncio.wait_for(handling, 5)
    assert h.offsets.finished_at == [] and not h.topics["status"].sent


# -- item 6: a delivery that kills the worker is counted ------------------------------------


async def test_each_delivery_is_counted_on_the_broker_before_the_work_starts() -> None:
    seen: list[Any] = []
    h = Harness()

    async def run(ctx: PipelineContext, sub: AudioSubmitted) -> tuple[TranscriptDocument, bool]:
        seen.append(h.table_at_flush[-1][str(sub.task_id)])
        return await transcribes(ctx, sub)

    h.processor.run = run
    sub = task()
    await h.deliver(submitted_event(sub))
    assert seen == [{"status": "processing", "attempt": 0, "replay": 0, "unfinished": 1}]


async def test_a_task_whose_deliveries_keep_dying_is_dead_lettered_as_worker_crashed() -> None:
    runs: list[str] = []

    async def dies(ctx: PipelineContext, sub: AudioSubmitted) -> Any:
        runs.append("run")
        raise asyncio.CancelledError  # never returns: stands in for the process dying

    h = Harness(dies, max_deliveries=2)
    sub = task()
    key = str(sub.task_id)
    # Two deliveries began and the worker died in each (the count survived in the table).
    h.table[key] = {"status": "processing", "attempt": 0, "replay": 0, "unfinished": 2}
    await h.deliver(submitted_event(sub, offset=7))
    assert runs == [], "not run a third time"
    (dead,) = h.topics["dlq"].sent
    assert dead.headers[ERROR_CODE] == b"worker_crashed" and dead.value == sub.to_bytes()
    assert h.statuses(sub) == ["failed"]
    assert h.topics["status"].sent[-1].json()["error"]["code"] == "worker_crashed"
    assert h.offsets.finished_at == [7]
    # Replayed by an operator, it runs again (a new generation starts a new count).
    await h.deliver(submitted_event(sub, offset=8, headers=[(REPLAY, b"1")]))
    assert runs == ["run"]


async def test_deliveries_that_reached_an_outcome_are_not_counted() -> None:
    async def storage_down(ctx: PipelineContext, sub: AudioSubmitted) -> Any:
        raise TaskError(ErrorCode.STORAGE_UNAVAILABLE, "Storage unavailable.", transient=True)

    h = Harness(storage_down, max_deliveries=1, max_attempts=5)
    sub = task()
    await h.deliver(submitted_event(sub))
    await h.deliver(submitted_event(sub, offset=1))  # redelivered after a retry was scheduled
    assert not any(r.headers[ERROR_CODE] == b"worker_crashed" for r in h.topics["dlq"].sent)
    assert len(h.topics["retry"].sent) == 2


async def _until(cond: Any) -> None:
    """Let the processor run until ``cond()`` holds (it needs a few turns of the loop)."""
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")
