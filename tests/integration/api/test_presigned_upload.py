"""A presigned PUT as a client does it (httpx, to the suite's S3 server), then a submission.

With server-side encryption configured, the URL's signature covers the encryption headers:
S3 refuses a PUT without them, so the presign answer must name them. (moto does not check
signatures, so the test also checks that the answer's headers are exactly the signed ones.)
"""

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.fixtures.fake_api import M4A_HEAD
from tests.fixtures.stack import StackConfig, start_api

pytestmark = pytest.mark.integration
USER = "dr_presign"


def signed_headers(url: str) -> set[str]:
    """The headers a SigV4 presigned URL's signature covers, ``host`` aside."""
    query = parse_qs(urlparse(url).query)
    assert query.get("X-Amz-Algorithm") == ["AWS4-HMAC-SHA256"], "not a SigV4 presigned URL"
    return set(query["X-Amz-SignedHeaders"][0].split(";")) - {"host"}


@pytest.mark.parametrize("sse", ["none", "AES256"])
def test_a_presigned_put_then_a_submission(
    kafka_broker: Any, s3_endpoint: str, tmp_path: Path, sse: str
) -> None:
    cfg = StackConfig(kafka_broker.bootstrap, s3_endpoint, tmp_path)
    api, url = start_api(cfg, MEDVOICE_S3__SSE=sse)
    try:
        with cfg.client(url, USER, admin=False) as client:
            presigned = client.post(f"/uploads/{USER}/presign").json()
            headers = presigned["headers"]
            assert set(headers) == signed_headers(presigned["url"])
            put = httpx.put(presigned["url"], content=M4A_HEAD + bytes(256), headers=headers)
            assert put.status_code == 200, put.text
            stored = cfg.s3().head_object(Bucket=cfg.bucket, Key=presigned["object_key"])
            if sse == "none":
                assert headers == {} and "ServerSideEncryption" not in stored
            else:
                assert headers == {"x-amz-server-side-encryption": sse}
                assert stored["ServerSideEncryption"] == sse
            resp = client.post(
                f"/process_audio_v2/{USER}", params={"file_id": presigned["file_id"]}
            )
            assert resp.status_code == 200, resp.text
            assert resp.json()["task_id"]
    finally:
        api.terminate()
