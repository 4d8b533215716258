"""Hostile input to the real app: oversized bodies, non-audio, bad names and ids, errors."""

from collections.abc import AsyncIterator

import pytest

from producer_api.settings import AuthSettings
from tests.fixtures import tokens
from tests.fixtures.fake_api import M4A_HEAD, FakeApi, fake_api

SECRET = tokens.new_secret()
USER = "dr_a"
LIMIT = 32 * 1024  # MEDVOICE_API__MAX_UPLOAD_BYTES in these tests


def auth() -> dict[str, str]:
    """A fresh bearer header (minted per use: collection may be long before the test runs)."""
    return {"Authorization": f"Bearer {tokens.hs256(SECRET, USER)}"}


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    fake = fake_api(AuthSettings(hs256_secret=SECRET), max_upload_bytes=LIMIT)
    async with fake.client:
        yield fake


def multipart(payload: bytes, name: str = "d.m4a") -> tuple[bytes, str]:
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: audio/mp4\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def test_a_declared_content_length_over_the_limit_is_413_before_reading(
    api: FakeApi,
) -> None:
    body, ctype = multipart(M4A_HEAD + bytes(LIMIT * 4))
    resp = await api.client.post(
        f"/uploads/{USER}", content=body, headers={**auth(), "Content-Type": ctype}
    )
    assert resp.status_code == 413 and "limit" in resp.json()["detail"]
    assert not api.storage.objects


async def test_a_chunked_body_is_cut_off_at_the_limit_while_streaming(api: FakeApi) -> None:
    body, ctype = multipart(M4A_HEAD + bytes(LIMIT * 4))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for at in range(0, len(body), 4096):
            yield body[at : at + 4096]

    resp = await api.client.post(
        f"/uploads/{USER}", content=chunks(), headers={**auth(), "Content-Type": ctype}
    )
    assert resp.status_code == 413
    assert not api.storage.objects


async def test_a_file_just_over_the_limit_is_413(api: FakeApi) -> None:
    files = {"file": ("d.m4a", M4A_HEAD + bytes(LIMIT), "audio/mp4")}
    resp = await api.client.post(f"/uploads/{USER}", files=files, headers=auth())
    assert resp.status_code == 413
    assert not api.storage.objects


async def test_bodies_on_routes_that_take_none_are_bounded(api: FakeApi) -> None:
    resp = await api.client.post(
        f"/process_audio_v2/{USER}", content=bytes(128 * 1024), headers=auth()
    )
    assert resp.status_code == 413


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("notes.m4a", b"%PDF-1.7 not audio at all" + bytes(100)),
        ("x.mp3", b"MZ\x90\x00 a windows executable"),
        ("x.wav", b"RIFF\x00\x00\x00\x00AVI LIST"),
        ("x.m4a", b""),
    ],
)
async def test_content_that_is_not_the_named_audio_is_422(
    api: FakeApi, name: str, payload: bytes
) -> None:
    resp = await api.client.post(
        f"/uploads/{USER}", files={"file": (name, payload, "audio/mp4")}, headers=auth()
    )
    assert resp.status_code == 422, resp.text
    assert not api.storage.objects


@pytest.mark.parametrize("name", ["x.exe", "noextension", "../../etc/passwd", "a.m4a/.."])
async def test_an_unsupported_extension_is_422(api: FakeApi, name: str) -> None:
    resp = await api.client.post(
        f"/uploads/{USER}", files={"file": (name, M4A_HEAD, "audio/mp4")}, headers=auth()
    )
    assert resp.status_code == 422
    assert not api.storage.objects


async def test_a_traversal_file_name_cannot_steer_the_key(api: FakeApi) -> None:
    resp = await api.client.post(
        f"/uploads/{USER}",
        files={"file": ("../../other/x.m4a", M4A_HEAD, "audio/mp4")},
        headers=auth(),
    )
    assert resp.status_code == 201
    (key,) = api.storage.objects
    assert key == f"audio/{USER}/{resp.json()['file_id']}.m4a"


@pytest.mark.parametrize(
    "file_name",
    [
        "a\x00b.m4a",
        "line\nbreak",
        "tab\there",
        "bell\x07",
        "rtl\u202egpj.m4a",
        "zw\u200bsp",
        "\x85",
    ],
)
async def test_control_characters_in_file_name_are_422(api: FakeApi, file_name: str) -> None:
    api.storage.objects[f"audio/{USER}/f1.m4a"] = M4A_HEAD
    resp = await api.client.post(
        f"/process_audio_v2/{USER}",
        params={"file_id": "f1", "file_name": file_name},
        headers=auth(),
    )
    assert resp.status_code == 422
    assert not api.publisher.submitted


async def test_unicode_file_names_are_fine_and_length_is_bounded(api: FakeApi) -> None:
    api.storage.objects[f"audio/{USER}/f1.m4a"] = M4A_HEAD
    ok = await api.client.post(
        f"/process_audio_v2/{USER}",
        params={"file_id": "f1", "file_name": "Ärztin \u2013 Befund 😀 für Hr. Müller.m4a"},
        headers=auth(),
    )
    assert ok.status_code == 200
    long = await api.client.post(
        f"/process_audio_v2/{USER}",
        params={"file_id": "f1", "file_name": "a" * 256},
        headers=auth(),
    )
    assert long.status_code == 422


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (f"/process_audio_v2/{USER}", {"file_id": "../dr_b/f1"}),
        (f"/process_audio_v2/{USER}", {"file_id": "f1", "file_extension": "m4a/../../x"}),
        (f"/process_audio_v2/{USER}", {"file_id": "f1\x00"}),
        ("/process_audio_v2/..%2Fdr_b", {}),
        ("/uploads/dr_a%00/presign", {}),
        ("/tasks/..%2F..%2Fetc", {}),
    ],
)
async def test_ids_outside_the_pattern_are_refused(
    api: FakeApi, path: str, params: dict[str, str]
) -> None:
    resp = await api.client.post(path, params=params, headers=auth())
    if path.startswith("/tasks"):
        resp = await api.client.get(path, headers=auth())
    assert resp.status_code in (403, 404, 405, 422), resp.text
    assert not api.publisher.submitted


async def test_validation_errors_do_not_echo_large_input(api: FakeApi) -> None:
    huge = "A" * 5000
    resp = await api.client.post(
        f"/process_audio_v2/{USER}", params={"file_id": huge}, headers=auth()
    )
    assert resp.status_code == 422
    assert huge[:100] not in resp.text and len(resp.text) < 1000
    short = await api.client.post(
        f"/process_audio_v2/{USER}", params={"file_id": "a/b"}, headers=auth()
    )
    assert short.json()["detail"][0]["input"] == "a/b"


async def test_an_internal_error_answers_without_details(api: FakeApi) -> None:
    api.storage.fail_with = RuntimeError("connect to 10.0.3.7:9000 failed\nTraceback ...")
    resp = await api.client.post(
        f"/process_audio_v2/{USER}", params={"file_id": "f1"}, headers=auth()
    )
    assert resp.status_code == 500
    assert resp.json() == {"detail": "Internal error."}
