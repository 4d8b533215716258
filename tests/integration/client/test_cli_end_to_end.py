"""The ``medvoice`` console script and the Python client against the real API and worker.

The venv's console script runs as a subprocess: upload -> submit -> wait (over the API's
server-sent events: the API's stream metrics count the stream that carried the final status,
and no poll of GET /tasks/{id} happened) -> SRT written and parsed; its exit codes for a
missing file (2), an unreachable API (3) and a recording the API refuses (1, with the
reason). The async client uploads with a presigned PUT and reads the JSON document. The
operators' ``dlq list`` shows a poison record's ids and code, never its file name.
"""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jiwer
import pytest
import srt
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from medvoice_client import AsyncClient, TaskStatus
from schemas.transcript import TranscriptDocument
from tests.fixtures.audio import spoken_clip
from tests.fixtures.driver import submitted
from tests.fixtures.processes import ROOT, ManagedProcess
from tests.fixtures.stack import StackConfig, read_topic, start_api, start_worker

pytestmark = pytest.mark.integration

USER = "dr_cli-01"
SENTENCE = "The patient reports a mild headache and no nausea."
MAX_WER = 0.25  # tiny.en on espeak-ng speech: typically 0-0.1
TOKEN_TTL_S = 3600
CLI_TIMEOUT_S = 240
MEDVOICE = Path(sys.executable).parent / "medvoice"
SECRET_NAME = "Jane-Doe-private-visit.m4a"  # a file name that must never be printed


def words(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace()).strip()


class Stack:
    """One API and one worker on an isolated deployment, shared by this module's tests."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.worker, _ = start_worker(cfg)
        self.api: ManagedProcess | None = None
        try:
            self.api, self.url = start_api(cfg)
        except BaseException:
            self.worker.terminate()
            raise
        self.token = cfg.token(USER, ttl_s=TOKEN_TTL_S)

    def medvoice(
        self, *args: str, url: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run the console script with MV_API_URL and MV_TOKEN set (and ``env``)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MEDVOICE_", "MV_"))}
        full = {**base, "MV_API_URL": url or self.url, "MV_TOKEN": self.token, **env}
        return subprocess.run(
            [str(MEDVOICE), *args],
            env=full,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )

    def close(self) -> None:
        for proc in (self.api, self.worker):
            if proc is not None:
                proc.terminate()


@pytest.fixture(scope="module")
def stack(
    kafka_broker: Any, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    assert MEDVOICE.exists(), f"{MEDVOICE} missing: reinstall the project (make install)"
    cfg = StackConfig(kafka_broker.bootstrap, s3_endpoint, tmp_path_factory.mktemp("cli"))
    s = Stack(cfg)
    yield s
    s.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("clip")
    path = work / "visit.m4a"
    path.write_bytes(spoken_clip(SENTENCE, "m4a", work))
    return path


def api_samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The API's metrics now: (name, sorted labels) -> value."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


STREAMED_TO_THE_END = ("medvoice_sse_streams_ended_total", (("end", "final"),))
POLLS = (
    "medvoice_http_requests_total",
    (("method", "GET"), ("route", "/tasks/{task_id}"), ("status_class", "2xx")),
)


def test_transcribe_waits_and_writes_parseable_srt(
    stack: Stack, clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    before = api_samples(stack.url)
    done = stack.medvoice("transcribe", str(clip), "--wait", "--format", "srt", "--out", str(out))
    assert done.returncode == 0, done.stderr
    after = api_samples(stack.url)
    # The wait rode the events stream to the final status, without polling.
    assert after[STREAMED_TO_THE_END] == before[STREAMED_TO_THE_END] + 1
    assert after.get(POLLS, 0.0) == before.get(POLLS, 0.0)
    task_id, status, written, recording = done.stdout.strip().split("\t")
    assert (status, written, recording) == ("completed", str(out / "visit.srt"), str(clip))
    subtitles = list(srt.parse((out / "visit.srt").read_text(encoding="utf-8")))
    assert subtitles, "at least one cue"
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    assert all(s.start < s.end for s in subtitles)
    heard = " ".join(s.content.replace("\n", " ") for s in subtitles)
    assert jiwer.wer(words(SENTENCE), words(heard)) <= MAX_WER, heard
    assert task_id in done.stderr, "the status lines name the task"
    assert "completed" in done.stderr
    for word in ("headache", "nausea"):  # the transcript never reaches the status lines
        assert word not in done.stderr.lower()

    shown = stack.medvoice("status", task_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split("\t")[:2] == [task_id, "completed"]
    text = stack.medvoice("transcript", task_id, "--format", "txt")
    assert text.returncode == 0, text.stderr
    assert jiwer.wer(words(SENTENCE), words(text.stdout)) <= MAX_WER


def test_a_missing_file_is_a_usage_error(stack: Stack, tmp_path: Path) -> None:
    done = stack.medvoice("transcribe", str(tmp_path / "absent.m4a"), "--wait")
    assert done.returncode == 2, done.stderr
    assert "does not exist" in done.stderr


def test_an_unreachable_api_exits_3(stack: Stack, clip: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        done = stack.medvoice("transcribe", str(clip), "--wait", url=url)
        status = stack.medvoice("status", "00000000-0000-4000-8000-000000000000", url=url)
    assert done.returncode == 3, done.stderr
    assert "could not be reached" in done.stderr
    assert status.returncode == 3, status.stderr


def test_a_refused_recording_exits_1_with_the_apis_reason(stack: Stack, tmp_path: Path) -> None:
    garbage = tmp_path / "broken.m4a"
    garbage.write_bytes(os.urandom(4096))
    done = stack.medvoice("transcribe", str(garbage), "--wait", "--out", str(tmp_path / "out"))
    assert done.returncode == 1, done.stderr
    assert "422" in done.stderr
    assert "is not a m4a recording" in done.stderr
    assert done.stdout.strip().split("\t")[:3] == ["-", "refused", "-"]


async def test_async_client_presigned_upload_to_json_document(stack: Stack, clip: Path) -> None:
    sent: list[int] = []
    size = clip.stat().st_size  # noqa: ASYNC240 - a stat before anything runs
    async with AsyncClient(stack.url, stack.token, poll_interval_s=0.2) as mv:
        stored = await mv.upload_presigned(clip, progress=lambda n, _total: sent.append(n))
        task_id = await mv.submit(stored.file_id, stored.file_extension, file_name="visit.m4a")
        seen = [t.status async for t in mv.follow(task_id, timeout_s=180)]
        body = await mv.transcript_bytes(task_id, "json")
    assert seen[-1] is TaskStatus.COMPLETED, seen
    assert sent[-1] == size
    doc = TranscriptDocument.model_validate_json(body)
    assert jiwer.wer(words(SENTENCE), words(doc.text)) <= MAX_WER


async def test_dlq_list_shows_ids_and_codes_never_file_names(stack: Stack) -> None:
    cfg = stack.cfg
    poison = submitted(USER, "clip", "m4a").model_copy(update={"file_name": SECRET_NAME})
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, acks="all")
    await producer.start()
    try:  # a null header value: the worker dead-letters it as invalid_event
        await producer.send_and_wait(
            cfg.topic("audio.submitted"),
            poison.to_bytes(),
            key=str(poison.task_id).encode(),
            headers=[("traceparent", None)],
        )
    finally:
        await producer.stop()
    await read_topic(
        cfg.bootstrap,
        cfg.topic("audio.submitted.dlq"),
        lambda recs: any(r.key == str(poison.task_id).encode() for r in recs),
        timeout_s=60,
    )
    kafka_env = cfg.env()
    listed = stack.medvoice("dlq", "list", **kafka_env)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    mine = [r for r in rows if r[2] == str(poison.task_id)]
    assert len(mine) == 1, listed.stdout
    assert mine[0][3] == "invalid_event"
    assert SECRET_NAME not in listed.stdout + listed.stderr
    only_other = stack.medvoice("dlq", "list", "--code", "retries_exhausted", **kafka_env)
    assert str(poison.task_id) not in only_other.stdout
    dry = stack.medvoice("dlq", "replay", "--dry-run", **kafka_env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would replay 0 "), dry.stdout  # invalid_event never replays
