"""``Idempotency-Key`` on submissions: the same key and user within 24 h get the same task.

Claims are S3 objects written with conditional puts, so every API replica agrees on the
winner without a database. A claim names its task id from the start, but that id is
answered only once Kafka acknowledged the task's event (``published``):

- the request that creates the claim publishes the task, marks the claim published and
  answers its id;
- a request finding a published claim answers its id (nothing is published again);
- a request finding an unpublished claim answers 409 while the claim's lease runs (its
  publisher may still be waiting for Kafka); once it lapsed (that request failed, timed out
  or its process died), the request takes the claim over (``If-Match``: one taker) and
  publishes *the same task id* again; the worker treats a repeated event of a task as a
  duplicate, so a retry never makes a second task.

A failed publish never releases a claim: after a timeout the event may still be delivered.
"""

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from botocore.exceptions import ClientError
from pydantic import AwareDatetime, BaseModel, ValidationError

from producer_api.storage import Storage
from schemas.ids import AudioExtension

TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces
LEASE_PER_PUBLISH_TIMEOUT = 3  # a publish's records settle within a few of its timeouts
PRECONDITION_FAILED = ("PreconditionFailed", "412")


def claim_key(user_id: str, key: str) -> str:
    """The S3 key of a claim (the client's key is hashed: it never reaches a path as is)."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"idempotency/{user_id}/{digest}.json"


def request_fingerprint(
    file_id: str | None,
    file_extension: AudioExtension,
    file_name: str | None,
    callback_url: str | None = None,
) -> str:
    """A digest of what a submission asked for (file name and callback URL only hashed).

    Without a callback URL the digest is the one claims made before callbacks existed hold.
    """
    parts: list[str | None] = [file_id, file_extension.value, file_name]
    if callback_url is not None:
        parts.append(callback_url)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class Claim(BaseModel):
    """What a claim object holds."""

    task_id: uuid.UUID
    created_at: AwareDatetime
    """When the key was first used: the 24 h start here, and it is the task's submitted_at."""
    touched_at: AwareDatetime | None = None
    """When a request last set out to publish the task (its lease starts here)."""
    published: bool = True  # claims written before this field existed were answered
    request: str | None = None
    """The fingerprint of the request that made it."""
    file_id: str | None = None
    file_extension: AudioExtension | None = None
    object_key: str | None = None

    def lease_left_s(self, lease_s: float, now: datetime) -> float:
        """Seconds until a request may take this unpublished claim over (0: now)."""
        if self.touched_at is None:
            return 0.0
        return max(0.0, lease_s - (now - self.touched_at).total_seconds())


class Claimed(NamedTuple):
    """The outcome of a claim."""

    claim: Claim
    """The claim now in S3 (this request's, or an earlier one's)."""
    mine: bool
    """Whether this request created it (then it must publish the task)."""
    etag: str
    """The claim object's ETag (for a conditional take-over)."""


class IdempotencyStore:
    """Claims of idempotency keys, in the pipeline's bucket."""

    def __init__(self, storage: Storage, lease_s: float) -> None:
        """Keep claims next to the recordings in ``storage``'s bucket."""
        self.storage = storage
        self.lease_s = lease_s

    @classmethod
    def for_publish_timeout(cls, storage: Storage, publish_timeout_s: float) -> "IdempotencyStore":
        """Claims whose lease outlasts a publish of ``publish_timeout_s`` with its retries."""
        return cls(storage, LEASE_PER_PUBLISH_TIMEOUT * publish_timeout_s)

    async def claim(self, user_id: str, key: str, proposal: Claim) -> Claimed:
        """Claim ``key`` with ``proposal``, unless a claim younger than 24 h exists."""
        return await asyncio.to_thread(self._claim, claim_key(user_id, key), proposal)

    async def take_over(self, user_id: str, key: str, claimed: Claimed) -> Claim | None:
        """Renew the lease of an unpublished claim; None when another request did first."""
        renewed = claimed.claim.model_copy(update={"touched_at": datetime.now(UTC)})
        try:
            await asyncio.to_thread(
                self._put, claim_key(user_id, key), renewed, if_match=claimed.etag
            )
        except ClientError as exc:
            if _error_code(exc) in PRECONDITION_FAILED:
                return None
            raise
        return renewed

    async def mark_published(self, user_id: str, key: str, claim: Claim) -> None:
        """Record that the claim's task was acknowledged by Kafka."""
        done = claim.model_copy(update={"published": True})
        await asyncio.to_thread(self._put, claim_key(user_id, key), done)

    def _put(
        self, object_key: str, claim: Claim, *, if_match: str = "", create: bool = False
    ) -> str:
        s3 = self.storage.client
        body = claim.model_dump_json().encode()
        bucket = self.storage.bucket
        if create:
            resp = s3.put_object(Bucket=bucket, Key=object_key, Body=body, IfNoneMatch="*")
        elif if_match:
            resp = s3.put_object(Bucket=bucket, Key=object_key, Body=body, IfMatch=if_match)
        else:
            resp = s3.put_object(Bucket=bucket, Key=object_key, Body=body)
        return str(resp.get("ETag", ""))

    def _claim(self, object_key: str, proposal: Claim) -> Claimed:
        s3 = self.storage.client
        bucket = self.storage.bucket
        for _ in range(2):  # a second pass after removing an expired claim
            try:
                etag = self._put(object_key, proposal, create=True)
            except ClientError as exc:
                if _error_code(exc) not in PRECONDITION_FAILED:
                    raise
            else:
                return Claimed(proposal, True, etag)
            found = s3.get_object(Bucket=bucket, Key=object_key)
            try:
                existing = Claim.model_validate_json(found["Body"].read())
            except ValidationError:
                existing = None  # unreadable: treated as expired
            if existing is not None and datetime.now(UTC) - existing.created_at < TTL:
                return Claimed(existing, False, str(found.get("ETag", "")))
            s3.delete_object(Bucket=bucket, Key=object_key)
        raise RuntimeError("an idempotency claim kept reappearing while being replaced")


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code"))
