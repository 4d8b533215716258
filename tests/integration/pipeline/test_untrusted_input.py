"""The worker trusts neither the bytes of a presigned upload nor the object key of an event.

Real API, worker (whisper tiny.en), Kafka and S3. A presigned PUT goes to S3 without the
API's upload checks; the worker must reach the verdict the API reaches on a direct upload.
An event naming another object than its own ids must not make the worker read it.
"""

import io
import uuid
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from schemas.events import AudioSubmitted
from schemas.ids import AudioExtension, transcript_object_key
from tests.fixtures.audio import spoken_clip
from tests.fixtures.driver import StatusFollower, put_audio, submit_events
from tests.fixtures.stack import StackConfig, start_api, start_worker

pytestmark = pytest.mark.integration
ALICE, BOB = "dr_alice_untrusted", "dr_bob_untrusted"
MAX_AUDIO_S = 5.0  # the API's and the worker's limit here
SHORT = "Blood pressure is normal today."
LONG = (
    "The patient is a sixty two year old man with a history of hypertension "
    "who presents with shortness of breath on exertion for two weeks."
)
CONCAT = b"ffconcat version 1.0\nfile local.wav\n"
HLS = (
    b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
    b"#EXTINF:10.0,\nhttp://127.0.0.1:9/seg.ts\n#EXT-X-ENDLIST\n"
)


def png_image() -> bytes:
    """A real PNG image (one 16x16 frame encoded by FFmpeg)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="image2pipe") as dst:
        stream = dst.add_stream("png", rate=1)
        stream.width = stream.height = 16
        stream.pix_fmt = "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        dst.mux(stream.encode(frame))
        dst.mux(stream.encode(None))
    return out.getvalue()


def presigned_upload(client: httpx.Client, ext: str, data: bytes) -> str:
    """PUT ``data`` through a presigned URL of the API (no check on the way); its file_id."""
    presign = client.post(f"/uploads/{ALICE}/presign", params={"file_extension": ext})
    assert presign.status_code == 200, presign.text
    answer = presign.json()
    put = httpx.put(answer["url"], content=data, headers=answer["headers"], timeout=30.0)
    assert put.status_code == 200, put.text
    return str(answer["file_id"])


def direct_upload(client: httpx.Client, ext: str, data: bytes) -> int:
    """The API's answer to the same bytes uploaded through it."""
    files = {"file": (f"note.{ext}", data, "application/octet-stream")}
    return client.post(f"/uploads/{ALICE}", files=files).status_code


async def test_presigned_uploads_get_the_api_checks(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    limit = str(MAX_AUDIO_S)
    api, url = start_api(cfg, MEDVOICE_API__MAX_AUDIO_S=limit)
    worker, _ = start_worker(cfg, MEDVOICE_WORKER__MAX_AUDIO_S=limit)
    client = cfg.client(url, ALICE, admin=False)
    try:
        long_mp3 = spoken_clip(LONG, "mp3", tmp_path)
        # name: (declared extension, bytes, failed status code or None for completed,
        #        the API's answer to a direct upload of the same bytes)
        cases: dict[str, tuple[str, bytes, str | None, int]] = {
            "good": ("m4a", spoken_clip(SHORT, "m4a", tmp_path), None, 201),
            "concat script": ("wav", CONCAT, "audio_wrong_format", 422),
            "hls playlist": ("m4a", HLS, "audio_wrong_format", 422),
            "image named wav": ("wav", png_image(), "audio_wrong_format", 422),
            "mp3 declared m4a": (
                "m4a",
                spoken_clip(SHORT, "mp3", tmp_path),
                "audio_wrong_format",
                422,
            ),
            # Its header counts ~9 s; the bytes hold the first ~2 s only.
            "header over the limit": ("mp3", long_mp3[: len(long_mp3) // 5], "audio_too_long", 413),
        }
        tasks: dict[str, str] = {}
        for name, (ext, data, _, _) in cases.items():
            file_id = presigned_upload(client, ext, data)
            params = {"file_id": file_id, "file_extension": ext}
            resp = client.post(f"/process_audio_v2/{ALICE}", params=params)
            assert resp.status_code == 200, (name, resp.text)
            tasks[str(resp.json()["task_id"])] = name

        async with StatusFollower(cfg) as status:
            ids = list(tasks)
            await status.wait(lambda: status.done(ids) == len(ids), 120, "every task final")
        for task_id, name in tasks.items():
            _, data, code, api_answer = cases[name]
            finals = status.finals(task_id)
            assert len(finals) == 1, (name, finals)
            if code is None:
                assert finals[0]["status"] == "completed", (name, finals)
            else:
                assert finals[0]["status"] == "failed", (name, finals)
                assert finals[0]["error"]["code"] == code, (name, finals)
                assert finals[0]["attempt"] == 0, "a refused recording is not retried"
            assert direct_upload(client, cases[name][0], data) == api_answer, name
        assert worker.alive()
    finally:
        client.close()
        worker.terminate()
        api.terminate()


async def test_an_event_naming_another_users_object_reads_nothing(
    stack_config: StackConfig, tmp_path: Path
) -> None:
    cfg = stack_config
    worker, _ = start_worker(cfg)
    try:
        bobs_key = put_audio(cfg, BOB, "private", "m4a", spoken_clip(SHORT, "m4a", tmp_path))
        put_audio(cfg, ALICE, "own", "m4a", spoken_clip(SHORT, "m4a", tmp_path))

        def event(object_key: str) -> AudioSubmitted:
            return AudioSubmitted(
                task_id=uuid.uuid4(),
                user_id=ALICE,
                file_id="own",
                file_extension=AudioExtension.M4A,
                object_key=object_key,
            )

        forged = event(bobs_key)
        traversal = event(f"audio/{ALICE}/../{BOB}/private.m4a")
        honest = event(f"audio/{ALICE}/own.m4a")
        await submit_events(cfg, [forged, traversal, honest])

        ids = [str(e.task_id) for e in (forged, traversal, honest)]
        async with StatusFollower(cfg) as status:
            await status.wait(lambda: status.done(ids) == len(ids), 120, "every task final")
        for bad in (forged, traversal):
            finals = status.finals(str(bad.task_id))
            assert [f["status"] for f in finals] == ["failed"], finals
            assert finals[0]["error"]["code"] == "object_key_mismatch"
            assert BOB not in finals[0]["error"]["message"]
            s3 = cfg.s3()
            listed = s3.list_objects_v2(
                Bucket=cfg.bucket, Prefix=transcript_object_key(ALICE, bad.task_id)
            )
            assert listed.get("KeyCount", 0) == 0, "no transcript of another object"
        assert [f["status"] for f in status.finals(str(honest.task_id))] == ["completed"]
        assert worker.alive()
    finally:
        worker.terminate()
