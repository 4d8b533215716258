"""S3 access through boto3: one client per process, built from settings."""

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from medvoice_common.settings import CommonSettings

if TYPE_CHECKING:  # stubs from the dev extra; the image has no mypy_boto3_s3
    from mypy_boto3_s3 import S3Client

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def make_client(settings: CommonSettings) -> "S3Client":
    """Build the S3 client (thread-safe; share it). No request is made here."""
    cfg = settings.s3
    kwargs: dict[str, Any] = {
        "region_name": settings.s3.region,
        "config": Config(
            connect_timeout=cfg.connect_timeout_s,
            read_timeout=cfg.read_timeout_s,
            retries={"max_attempts": cfg.max_attempts, "mode": "standard"},
            max_pool_connections=64,  # the API checks objects from many requests at once
            # Explicit: unset, botocore presigns S3 URLs with SigV2, which AWS refuses for
            # SSE-KMS; with SigV4 the encryption headers are signed and the client sends them.
            signature_version="s3v4",
        ),
    }
    if settings.s3.endpoint_url:
        kwargs["endpoint_url"] = settings.s3.endpoint_url
    if settings.s3.access_key_id and settings.s3.secret_access_key:
        kwargs["aws_access_key_id"] = settings.s3.access_key_id.get_secret_value()
        kwargs["aws_secret_access_key"] = settings.s3.secret_access_key.get_secret_value()
    client: S3Client = boto3.client("s3", **kwargs)
    return client


def put_kwargs(settings: CommonSettings) -> dict[str, str]:
    """Extra arguments for every PutObject: server-side encryption when configured."""
    cfg = settings.s3
    if cfg.sse == "none":
        return {}
    extra: dict[str, str] = {"ServerSideEncryption": cfg.sse}
    if cfg.sse == "aws:kms" and cfg.sse_kms_key_id:
        extra["SSEKMSKeyId"] = cfg.sse_kms_key_id
    return extra


def is_not_found(exc: BaseException) -> bool:
    """Whether a boto error means the object or bucket does not exist."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND_CODES
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether a boto error may go away by itself (network, throttling, 5xx)."""
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        code = str(exc.response.get("Error", {}).get("Code"))
        return status >= 500 or status == 429 or code in {"SlowDown", "RequestTimeout"}
    return isinstance(exc, BotoCoreError)


def object_exists(client: "S3Client", bucket: str, key: str) -> bool:
    """Whether ``key`` exists; other errors are raised."""
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise
    return True


def ensure_bucket(client: "S3Client", bucket: str) -> None:
    """Create the bucket if it does not exist (dev and tests; production buckets exist)."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        client.create_bucket(Bucket=bucket)
