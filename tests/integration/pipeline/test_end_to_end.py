"""The whole flow on real parts: upload → seed endpoint → Kafka → Faust worker → whisper."""

import json
import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jiwer
import pytest
import srt
import webvtt

from tests.fixtures.audio import spoken_clip
from tests.fixtures.processes import ManagedProcess
from tests.fixtures.stack import (
    StackConfig,
    is_final,
    read_topic,
    start_api,
    start_worker,
    values,
    wait_for_status,
)

pytestmark = pytest.mark.integration

SENTENCE = "The patient reports chest pain since yesterday evening and has no fever."
MAX_WER = 0.25  # tiny.en on espeak-ng speech: typically 0-0.1; above 0.25 is a broken pipeline
USER = "dr_house-01"


def normalise(text: str) -> str:
    """Lower case, no punctuation: what WER is computed on."""
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace()).strip()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis``."""
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


class Stack:
    """One API and one worker on an isolated deployment, shared by this module's tests."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.worker, self.worker_url = start_worker(cfg)
        try:
            self.api, self.api_url = start_api(cfg)
        except BaseException:
            self.worker.terminate()
            raise
        self.client = cfg.client(self.api_url)

    def upload(self, data: bytes, extension: str) -> dict[str, Any]:
        resp = self.client.post(
            f"/uploads/{USER}",
            files={"file": (f"dictation.{extension}", data, "application/octet-stream")},
        )
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def close(self) -> None:
        self.client.close()
        for proc in (self.api, self.worker):
            proc.terminate()


@pytest.fixture(scope="module")
def stack(
    kafka_broker: Any, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    cfg = StackConfig(kafka_broker.bootstrap, s3_endpoint, tmp_path_factory.mktemp("e2e"))
    s = Stack(cfg)
    yield s
    s.close()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    work = tmp_path_factory.mktemp("clips")
    return {ext: spoken_clip(SENTENCE, ext, work) for ext in ("m4a", "mp3")}


@pytest.mark.parametrize("extension", ["m4a", "mp3"])
async def test_spoken_clip_is_transcribed_end_to_end(
    stack: Stack, clips: dict[str, bytes], extension: str
) -> None:
    uploaded = stack.upload(clips[extension], extension)
    resp = stack.client.post(
        f"/process_audio_v2/{USER}",
        params={
            "file_id": uploaded["file_id"],
            "file_extension": extension,
            "file_name": "dictation.m4a",
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["message"] == "Audio processing started in the background"
    task_id = body["task_id"]

    seen: list[str] = []
    final = wait_for_status(stack.client, task_id, is_final, seen=seen)
    assert final["status"] == "completed", final
    assert seen[0] in ("queued", "processing")
    assert seen == sorted(seen, key=["queued", "processing", "completed"].index)
    assert wer(SENTENCE, final["transcript"]["text"]) <= MAX_WER, final["transcript"]["text"]

    ready = await read_topic(
        stack.cfg.bootstrap,
        stack.cfg.topic("transcript.ready"),
        lambda recs: any(v["task_id"] == task_id for v in values(recs)),
    )
    event = next(v for v in values(ready) if v["task_id"] == task_id)
    assert event["event_type"] == "TranscriptReady"
    assert event["user_id"] == USER
    assert wer(SENTENCE, event["text"]) <= MAX_WER
    assert event["transcript_uri"] == (f"s3://{stack.cfg.bucket}/transcripts/{USER}/{task_id}.json")
    record = next(r for r in ready if json.loads(r.value)["task_id"] == task_id)
    _check_cloudevents(record, event, "TranscriptReady", "/medvoice/worker")
    # queued, processing, completed on task.status: all there, the API has shown completed.
    for topic, kind, source, count in (
        ("audio.submitted", "AudioSubmitted", "/medvoice/api", 1),
        ("task.status", "TaskStatusChanged", None, 3),
    ):
        mine = await read_topic(
            stack.cfg.bootstrap,
            stack.cfg.topic(topic),
            partial(_has_records_of, task_id, count),
        )
        for record in (r for r in mine if json.loads(r.value)["task_id"] == task_id):
            _check_cloudevents(record, json.loads(record.value), kind, source)

    key = f"transcripts/{USER}/{task_id}.json"
    doc = json.loads(stack.cfg.s3().get_object(Bucket=stack.cfg.bucket, Key=key)["Body"].read())
    words = [w for seg in doc["segments"] for w in seg["words"]]
    assert doc["backend"] == "whisper" and doc["duration_s"] > 2.0
    assert len(words) >= 8
    starts = [w["start_s"] for w in words]
    assert starts == sorted(starts) and words[-1]["end_s"] <= doc["duration_s"] + 0.5
    assert all(0.0 <= w["confidence"] <= 1.0 for w in words)
    served = stack.client.get(f"/tasks/{task_id}/transcript")
    assert served.status_code == 200 and served.json()["text"] == doc["text"]
    _check_exports(stack, task_id, doc)


def _has_records_of(task_id: str, count: int, records: list[Any]) -> bool:
    matching: int = sum(json.loads(r.value)["task_id"] == task_id for r in records)
    return matching >= count


def _check_cloudevents(record: Any, body: dict[str, Any], kind: str, source: str | None) -> None:
    """The CloudEvents Kafka binding (binary mode) headers agree with the JSON body."""
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == body["event_id"]
    assert headers["ce_type"] == f"medvoice.{kind}.v{body['schema_version']}"
    assert headers["ce_subject"] == body["task_id"]
    assert headers["content-type"] == "application/json"
    assert datetime.fromisoformat(headers["ce_time"]) == datetime.fromisoformat(body["occurred_at"])
    assert headers["ce_source"] in ({source} if source else {"/medvoice/api", "/medvoice/worker"})


def _check_exports(stack: Stack, task_id: str, doc: dict[str, Any]) -> None:
    """txt, srt and vtt of a real whisper transcript, read back with real parsers."""
    words = [w["word"] for seg in doc["segments"] for w in seg["words"]]
    spoken = normalise(" ".join(words)).split()
    first_start = doc["segments"][0]["words"][0]["start_s"]

    text = stack.client.get(f"/tasks/{task_id}/transcript", params={"format": "txt"})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert normalise(text.text).split() == normalise(doc["text"]).split()

    subrip = stack.client.get(f"/tasks/{task_id}/transcript", params={"format": "srt"})
    assert subrip.headers["content-type"].startswith("application/x-subrip")
    cues = list(srt.parse(subrip.text, ignore_errors=False))
    assert normalise(" ".join(c.content for c in cues)).split() == spoken
    assert abs(cues[0].start.total_seconds() - first_start) < 0.002

    vtt = stack.client.get(f"/tasks/{task_id}/transcript", params={"format": "vtt"})
    assert vtt.headers["content-type"].startswith("text/vtt")
    captions = webvtt.from_string(vtt.text, strict=True)
    # webvtt-py's WebVTT is iterable through __getitem__ only, which mypy does not count
    assert normalise(" ".join(c.text for c in captions)).split() == spoken  # type: ignore[attr-defined]

    assert (
        stack.client.get(f"/tasks/{task_id}/transcript", params={"format": "docx"}).status_code
        == 422
    )


def test_corrupt_audio_fails_with_its_code_and_the_worker_goes_on(
    stack: Stack, clips: dict[str, bytes]
) -> None:
    # An m4a header followed by garbage passes the upload's container sniff but cannot decode.
    corrupt = clips["m4a"][:32] + bytes(range(256)) * 40
    bad = stack.upload(corrupt, "m4a")
    good = stack.upload(clips["m4a"], "m4a")
    bad_task = stack.client.post(
        f"/process_audio_v2/{USER}", params={"file_id": bad["file_id"]}
    ).json()["task_id"]
    good_task = stack.client.post(
        f"/process_audio_v2/{USER}", params={"file_id": good["file_id"]}
    ).json()["task_id"]

    failed = wait_for_status(stack.client, bad_task, is_final)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "audio_undecodable"
    assert stack.client.get(f"/tasks/{bad_task}/transcript").status_code == 404
    completed = wait_for_status(stack.client, good_task, is_final)
    assert completed["status"] == "completed"


def test_latest_upload_is_used_without_file_id(stack: Stack, clips: dict[str, bytes]) -> None:
    user = f"u{int(time.time() * 1000)}"
    assert stack.client.post(f"/process_audio_v2/{user}").status_code == 404
    resp = stack.client.post(
        f"/uploads/{user}", files={"file": ("a.mp3", clips["mp3"], "audio/mpeg")}
    )
    assert resp.status_code == 201
    task_id = stack.client.post(f"/process_audio_v2/{user}").json()["task_id"]
    final = wait_for_status(stack.client, task_id, is_final)
    assert final["file_id"] == resp.json()["file_id"] and final["status"] == "completed"


def test_unknown_file_and_bad_ids_are_refused(stack: Stack) -> None:
    missing = stack.client.post(f"/process_audio_v2/{USER}", params={"file_id": "nope"})
    assert missing.status_code == 404
    traversal = stack.client.post(f"/process_audio_v2/{USER}", params={"file_id": "../etc"})
    assert traversal.status_code == 422
    assert "pattern" in traversal.text
    bad_ext = stack.client.post(
        f"/process_audio_v2/{USER}", params={"file_id": "x", "file_extension": "exe"}
    )
    assert bad_ext.status_code == 422
    assert stack.client.get("/tasks/00000000-0000-4000-8000-000000000000").status_code == 404


def test_worker_serves_health_and_metrics(stack: Stack) -> None:
    assert httpx.get(f"{stack.worker_url}/healthz").status_code == 200
    ready = httpx.get(f"{stack.worker_url}/readyz")
    assert ready.status_code == 200 and all(ready.json()["checks"].values())
    # Ready only once the status table is rebuilt from its changelog (minutes, cold, at scale).
    assert ready.json()["checks"]["table_recovered"] is True
    metrics = httpx.get(f"{stack.worker_url}/metrics").text
    assert "medvoice_tasks_completed_total" in metrics


def test_broker_down_answers_500_within_the_timeout(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    """With Kafka gone the seed endpoint answers 500 within its publish timeout."""
    from tests.fixtures.kafka_broker import KafkaBroker

    broker = KafkaBroker(tmp_path / "own-kafka")
    broker.start()
    stack_config.bootstrap = broker.bootstrap
    api: ManagedProcess | None = None
    try:
        api, url = start_api(stack_config, MEDVOICE_API__PUBLISH_TIMEOUT_S="3")
        client = stack_config.client(url)
        s3 = stack_config.s3()
        s3.put_object(Bucket=stack_config.bucket, Key=f"audio/{USER}/f1.m4a", Body=b"x")
        assert client.post(f"/process_audio_v2/{USER}", params={"file_id": "f1"}).status_code == 200
        broker.stop()
        started = time.monotonic()
        resp = client.post(f"/process_audio_v2/{USER}", params={"file_id": "f1"})
        elapsed = time.monotonic() - started
        assert resp.status_code == 500
        assert "detail" in resp.json()
        assert elapsed < 3 + 2  # the timeout plus scheduling slack on a busy machine
        assert client.get("/readyz").status_code == 503
    finally:
        if api is not None:
            api.terminate()
        broker.stop()
