"""The pipeline with ``MEDVOICE_ASR__BACKEND=riva`` against the Riva-protocol test server."""

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import jiwer
import pytest

from tests.fixtures.audio import spoken_clip
from tests.fixtures.driver import StatusFollower, put_audio, submit_events, submitted
from tests.fixtures.kafka_broker import KafkaBroker
from tests.fixtures.processes import ManagedProcess
from tests.fixtures.riva_server import RivaTestServer
from tests.fixtures.stack import StackConfig, start_worker

pytestmark = pytest.mark.integration
USER = "dr_riva"
CHUNK_S = 8.0  # the smallest chunk the settings allow is 5 s; 8 s cuts the clip in 3+
LONG_TEXT = (
    "The patient is a fifty four year old woman seen today for a follow up visit. "
    "She reports that her blood pressure readings at home have been stable. "
    "She denies chest pain, shortness of breath and swelling of the ankles. "
    "Her current medications are lisinopril and metformin taken every morning. "
    "We will continue the same treatment and repeat the blood tests in three months."
)
SHORT_TEXT = "The patient has a mild cough."
VOCABULARY = ("lisinopril", "metformin", "atorvastatin")
MAX_WER = 0.3


def normalise(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace()).strip()


class RivaStack:
    def __init__(self, cfg: StackConfig, server: RivaTestServer, worker: ManagedProcess) -> None:
        self.cfg, self.server, self.worker = cfg, server, worker


@pytest.fixture(scope="module")
def riva_stack(
    kafka_broker: KafkaBroker, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RivaStack]:
    work = tmp_path_factory.mktemp("riva")
    vocab = work / "vocabulary.txt"
    vocab.write_text("# test terms\n" + "\n".join(VOCABULARY) + "\n")
    cfg = StackConfig(kafka_broker.bootstrap, s3_endpoint, work)
    put_audio(cfg, USER, "long", "m4a", spoken_clip(LONG_TEXT, "m4a", work))
    put_audio(cfg, USER, "short", "mp3", spoken_clip(SHORT_TEXT, "mp3", work))
    with RivaTestServer() as server:
        worker, _ = start_worker(
            cfg,
            MEDVOICE_ASR__BACKEND="riva",
            MEDVOICE_RIVA__URI=server.uri,
            MEDVOICE_ASR__CHUNK_S=str(CHUNK_S),
            MEDVOICE_ASR__VOCABULARY_FILE=str(vocab),
            MEDVOICE_RIVA__DIARIZATION="true",
            MEDVOICE_RIVA__MAX_SPEAKERS="2",
            MEDVOICE_RIVA__BOOST_SCORE="30",
            MEDVOICE_RIVA__PARALLEL_CHUNKS="3",
        )
        try:
            yield RivaStack(cfg, server, worker)
        finally:
            worker.terminate()


async def run_task(stack: RivaStack, file_id: str, ext: str) -> tuple[str, StatusFollower]:
    event = submitted(USER, file_id, ext)
    task_id = str(event.task_id)
    await submit_events(stack.cfg, [event])
    async with StatusFollower(stack.cfg) as status:
        await status.wait(lambda: bool(status.finals(task_id)), 180, "the task final")
    return task_id, status


def document(stack: RivaStack, task_id: str) -> dict[str, Any]:
    key = f"transcripts/{USER}/{task_id}.json"
    body = stack.cfg.s3().get_object(Bucket=stack.cfg.bucket, Key=key)["Body"].read()
    return dict(json.loads(body))


async def test_long_dictation_is_chunked_and_stitched(riva_stack: RivaStack) -> None:
    before = len(riva_stack.server.configs)
    riva_stack.server.in_flight_peak = 0
    task_id, status = await run_task(riva_stack, "long", "m4a")
    assert status.finals(task_id)[0]["status"] == "completed", status.finals(task_id)
    doc = document(riva_stack, task_id)
    assert doc["backend"] == "riva"
    assert doc["duration_s"] > 3 * CHUNK_S
    chunks = doc["chunking"]["chunks"]
    assert len(chunks) >= 3 and doc["chunking"]["max_chunk_s"] == CHUNK_S
    assert chunks[0][0] == 0 and abs(chunks[-1][1] - doc["duration_s"]) < 0.01
    assert all(end - start <= CHUNK_S + 1e-6 for start, end in chunks)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))

    words = [w for seg in doc["segments"] for w in seg["words"]]
    starts = [w["start_s"] for w in words]
    assert starts == sorted(starts), "word times must be monotonic across chunks"
    assert words[-1]["end_s"] > chunks[-1][0], "the last chunk's words carry its offset"
    assert words[-1]["end_s"] <= doc["duration_s"] + 0.5
    assert {w["speaker"] for w in words} <= {1, 2} and any(w["speaker"] for w in words)
    assert jiwer.wer(normalise(LONG_TEXT), normalise(doc["text"])) <= MAX_WER, doc["text"]

    sent = riva_stack.server.requests[before:]
    recognize = [r for r in sent if r.method == "Recognize"]
    assert len(recognize) == len(chunks)
    # the chunks were in flight together (MEDVOICE_RIVA__PARALLEL_CHUNKS=3), so a server
    # can batch them; the stitching above shows their order was kept
    assert riva_stack.server.in_flight_peak == min(3, len(chunks))
    assert all(r.audio_bytes <= CHUNK_S * 16_000 * 2 for r in recognize)
    config = recognize[0].config
    boosted = {p for ctx in config.speech_contexts for p in ctx.phrases}
    assert boosted == set(VOCABULARY)
    assert config.speech_contexts[0].boost == 30
    assert config.diarization_config.enable_speaker_diarization
    assert config.diarization_config.max_speaker_count == 2
    assert doc["vocabulary"] == {"source": "vocabulary.txt", "terms_offered": 3, "boost": 30.0}


async def test_unavailable_server_is_retried_until_it_answers(riva_stack: RivaStack) -> None:
    riva_stack.server.fail_next(3, grpc.StatusCode.UNAVAILABLE)
    task_id, status = await run_task(riva_stack, "short", "mp3")
    changes = status.by_task[task_id]
    assert [f["status"] for f in status.finals(task_id)] == ["completed"]
    assert max(c["attempt"] for c in changes) >= 3, "three refusals, three retries"
    doc = document(riva_stack, task_id)
    assert jiwer.wer(normalise(SHORT_TEXT), normalise(doc["text"])) <= MAX_WER


async def test_invalid_argument_fails_at_once_as_asr_rejected(riva_stack: RivaStack) -> None:
    riva_stack.server.fail_next(1, grpc.StatusCode.INVALID_ARGUMENT, "bad request")
    task_id, status = await run_task(riva_stack, "short", "mp3")
    finals = status.finals(task_id)
    assert [f["status"] for f in finals] == ["failed"]
    assert finals[0]["error"]["code"] == "asr_rejected"
    assert finals[0]["attempt"] == 0, "a permanent error is not retried"
    assert "bad request" not in finals[0]["error"]["message"]


async def test_exhausted_retries_dead_letter_then_replay_completes(riva_stack: RivaStack) -> None:
    cfg = riva_stack.cfg
    riva_stack.server.fail_next(5, grpc.StatusCode.UNAVAILABLE)  # as many as the attempts
    task_id, status = await run_task(riva_stack, "short", "mp3")
    finals = status.finals(task_id)
    assert [f["status"] for f in finals] == ["failed"]
    assert finals[0]["error"]["code"] == "retries_exhausted"
    async with StatusFollower(cfg, "audio.submitted.dlq") as dlq:
        await dlq.wait(
            lambda: any(json.loads(r.value)["task_id"] == task_id for r in dlq.records),
            30,
            "the task's dead letter",
        )
    record = next(r for r in dlq.records if json.loads(r.value)["task_id"] == task_id)
    headers = dict(record.headers)
    assert headers["medvoice.error.code"] == b"retries_exhausted"
    assert headers["medvoice.error.cause"] == b"asr_unavailable"
    assert headers["medvoice.attempt"] == b"5"
    assert headers["medvoice.origin.topic"] == cfg.topic("audio.submitted").encode()

    replay = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "processors.replay", "--code", "retries_exhausted"],
        env={**os.environ, **cfg.env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "replayed 1 dead-lettered task" in replay.stdout, replay.stdout + replay.stderr
    async with StatusFollower(cfg) as status_after:
        await status_after.wait(
            lambda: any(f["status"] == "completed" for f in status_after.finals(task_id)),
            120,
            "the replayed task completed",
        )
    completed = next(f for f in status_after.finals(task_id) if f["status"] == "completed")
    assert completed["replay"] == 1
