"""The hot-path HEAD signer against botocore's own S3 signer, byte for byte."""

from datetime import UTC, datetime

import pytest
from botocore import auth as botocore_auth
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from medvoice_common.sigv4 import Credentials, HeadSigner

STATIC = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
SESSION = Credentials("ASIAEXAMPLE", "c2VjcmV0/with+slash", "IQoJb3JpZ2luX2VjE//token+/=")


def botocore_headers(
    url: str, creds: Credentials, region: str, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """What botocore's S3SigV4Auth adds to ``HEAD url`` at ``now``."""
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    request = AWSRequest(method="HEAD", url=url)
    frozen = ReadOnlyCredentials(creds.access_key, creds.secret_key, creds.token)
    S3SigV4Auth(frozen, "s3", region).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


def ours(signer: HeadSigner, path: str, creds: Credentials, now: datetime) -> dict[str, str]:
    lines = signer.headers(path, creds, now)
    assert lines[0] == f"Host: {signer.host}"  # sent first, signed, never by botocore's dict
    return {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}


@pytest.mark.parametrize("creds", [STATIC, SESSION], ids=["static", "session-token"])
@pytest.mark.parametrize(
    ("base", "host", "path"),
    [
        ("http://127.0.0.1:9000", "127.0.0.1:9000", "/medvoice/audio/u-1/f_2.m4a"),
        ("https://medvoice.s3.eu-west-1.amazonaws.com", "medvoice.s3.eu-west-1.amazonaws.com",
         "/audio/user/rec%20one%2B%C3%A9.wav"),
        ("http://[::1]:4566", "[::1]:4566", "/b/audio/x/y.ogg"),
    ],
)  # fmt: skip
def test_same_headers_as_botocore(
    creds: Credentials, base: str, host: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 11, 28, 23, 59, 59, tzinfo=UTC)
    signer = HeadSigner(host, "eu-west-1")
    expected = botocore_headers(base + path, creds, "eu-west-1", now, monkeypatch)
    assert ours(signer, path, creds, now) == expected


def test_signing_key_follows_the_date_and_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = HeadSigner("127.0.0.1:9000", "us-east-1")
    url = "http://127.0.0.1:9000/b/k.m4a"
    rotated = Credentials(STATIC.access_key, "another-secret", None)
    days = [datetime(2026, 11, 28, 23, 59, 59, tzinfo=UTC), datetime(2026, 11, 29, tzinfo=UTC)]
    for creds in (STATIC, rotated, STATIC):  # a cached key is never used for another secret
        for now in days:  # nor for another day
            expected = botocore_headers(url, creds, "us-east-1", now, monkeypatch)
            assert ours(signer, "/b/k.m4a", creds, now) == expected
