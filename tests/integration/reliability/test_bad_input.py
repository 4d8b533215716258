"""Poison records and bad audio mixed into good work: nothing lost, nothing stalls."""

import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.fixtures.audio import silence_wav, spoken_clip
from tests.fixtures.driver import StatusFollower, produce, put_audio, submitted
from tests.fixtures.stack import StackConfig, start_worker

pytestmark = pytest.mark.integration
USER = "dr_reliable"
SHORT = "Blood pressure is normal today."
LONG = (
    "The patient is a sixty two year old man with a history of hypertension "
    "who presents with shortness of breath on exertion for two weeks."
)
MAX_AUDIO_S = 3.5  # the worker's limit in this test: SHORT fits, LONG does not


async def test_poison_and_bad_audio_among_good_tasks(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    worker, web = start_worker(cfg, MEDVOICE_WORKER__MAX_AUDIO_S=str(MAX_AUDIO_S))
    try:
        good = spoken_clip(SHORT, "m4a", tmp_path)
        put_audio(cfg, USER, "good", "m4a", good)
        put_audio(cfg, USER, "corrupt", "m4a", good[:40] + b"\x00garbage" * 500)
        put_audio(cfg, USER, "empty", "wav", silence_wav(0.02, tmp_path / "e.wav").read_bytes())
        put_audio(cfg, USER, "long", "mp3", spoken_clip(LONG, "mp3", tmp_path))

        expected = {}
        records: list[tuple[bytes | None, bytes]] = []
        poison = [
            b"\xff\xfe not json at all",
            json.dumps({"event_type": "AudioSubmitted"}).encode(),
        ]
        plan: list[str | bytes] = [
            "good",
            poison[0],
            "corrupt",
            "good",
            "empty",
            poison[1],
            "long",
            "missing",
            "good",
        ]
        for item in plan:
            if isinstance(item, bytes):
                records.append((uuid.uuid4().bytes, item))
                continue
            ext = {"empty": "wav", "long": "mp3"}.get(item, "m4a")
            event = submitted(USER, item, ext)
            expected[str(event.task_id)] = item
            records.append((str(event.task_id).encode(), event.to_bytes()))
        await produce(cfg, records)

        codes = {
            "good": None,
            "corrupt": "audio_undecodable",
            "empty": "audio_empty",
            "long": "audio_too_long",
            "missing": "audio_missing",
        }
        async with StatusFollower(cfg) as status, StatusFollower(cfg, "audio.submitted.dlq") as dlq:
            ids = list(expected)
            await status.wait(lambda: status.done(ids) == len(ids), 120, "every task final")
            await dlq.wait(lambda: len(dlq.records) >= len(poison), 30, "poison in the DLQ")
            for task_id, kind in expected.items():
                finals = status.finals(task_id)
                assert {f["status"] for f in finals} == {"failed" if codes[kind] else "completed"}
                if codes[kind]:
                    assert finals[0]["error"]["code"] == codes[kind], (kind, finals)
                    assert finals[0]["error"]["message"]
            assert sorted(r.value for r in dlq.records) == sorted(poison)
            for rec in dlq.records:
                headers = dict(rec.headers)
                assert headers["medvoice.error.code"] == b"invalid_event"
                assert headers["medvoice.origin.topic"] == cfg.topic("audio.submitted").encode()
                assert int(headers["medvoice.origin.offset"]) >= 0

        metrics = httpx.get(f"{web}/metrics").text
        assert "medvoice_poison_messages_total 2.0" in metrics
        assert worker.alive(), "the worker must keep going"
    finally:
        worker.terminate()
