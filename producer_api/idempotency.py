"""``Idempotency-Key`` on submissions: the same key and user within 24 h get the same task.

Claims are S3 objects written with a conditional put (``If-None-Match: *``), so every API
replica agrees on the winner without a database.
"""

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from producer_api.storage import Storage

TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def claim_key(user_id: str, key: str) -> str:
    """The S3 key of a claim (the client's key is hashed: it never reaches a path as is)."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"idempotency/{user_id}/{digest}.json"


class IdempotencyStore:
    """Claims of idempotency keys, in the pipeline's bucket."""

    def __init__(self, storage: Storage) -> None:
        """Keep claims next to the recordings in ``storage``'s bucket."""
        self.storage = storage

    async def claim(self, user_id: str, key: str, task_id: uuid.UUID) -> tuple[uuid.UUID, bool]:
        """Claim ``key`` for ``task_id``.

        Returns:
            The task id to answer with, and whether this call made the claim (False: an
            earlier request within 24 h did, and its task id is returned).
        """
        return await asyncio.to_thread(self._claim, claim_key(user_id, key), task_id)

    async def release(self, user_id: str, key: str) -> None:
        """Drop a claim whose event could not be dispatched, so a retry can succeed."""
        s3 = self.storage.client
        await asyncio.to_thread(
            s3.delete_object, Bucket=self.storage.bucket, Key=claim_key(user_id, key)
        )

    def _claim(self, object_key: str, task_id: uuid.UUID) -> tuple[uuid.UUID, bool]:
        s3 = self.storage.client
        bucket = self.storage.bucket
        body = json.dumps({"task_id": str(task_id), "created_at": datetime.now(UTC).isoformat()})
        for _ in range(2):  # a second pass after removing an expired claim
            try:
                s3.put_object(Bucket=bucket, Key=object_key, Body=body.encode(), IfNoneMatch="*")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                    raise
            else:
                return task_id, True
            existing = json.loads(s3.get_object(Bucket=bucket, Key=object_key)["Body"].read())
            created = datetime.fromisoformat(existing["created_at"])
            if datetime.now(UTC) - created < TTL:
                return uuid.UUID(existing["task_id"]), False
            s3.delete_object(Bucket=bucket, Key=object_key)
        return task_id, True
