"""Recordings in S3: upload, presigned upload, lookup. Blocking boto3 calls run in threads."""

import asyncio
import uuid
from typing import IO, TYPE_CHECKING, NamedTuple

from medvoice_common import s3
from medvoice_common.s3_probe import ObjectProbe
from medvoice_common.settings import CommonSettings
from schemas.ids import AudioExtension, audio_object_key, audio_prefix

if TYPE_CHECKING:  # stubs from the dev extra; the image has no mypy_boto3_s3
    from mypy_boto3_s3 import S3Client


class StoredAudio(NamedTuple):
    """Where a recording is."""

    file_id: str
    """Server-chosen id of the recording."""
    file_extension: AudioExtension
    """Its container format."""
    object_key: str
    """Its S3 key."""


def new_file_id() -> str:
    """A fresh file id (hex uuid4: within the id pattern)."""
    return uuid.uuid4().hex


class Storage:
    """The API's access to recordings and transcripts in one bucket."""

    def __init__(self, client: "S3Client", settings: CommonSettings, probe: ObjectProbe) -> None:
        """Use ``client`` (and ``probe``, for existence checks) on ``settings.s3.bucket``."""
        self.client = client
        self.settings = settings
        self.bucket = settings.s3.bucket
        self.probe = probe

    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists (on the event loop: the seed endpoint's hot path)."""
        return await self.probe.exists(key)

    async def latest_upload(self, user_id: str) -> StoredAudio | None:
        """The user's most recently stored recording, if any."""
        return await asyncio.to_thread(self._latest_upload, user_id)

    def _latest_upload(self, user_id: str) -> StoredAudio | None:
        newest = None
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=audio_prefix(user_id)):
            for obj in page.get("Contents", []):
                if newest is None or obj["LastModified"] > newest["LastModified"]:
                    newest = obj
        if newest is None:
            return None
        name = newest["Key"].rsplit("/", 1)[-1]
        file_id, _, ext = name.rpartition(".")
        try:
            return StoredAudio(file_id, AudioExtension(ext), newest["Key"])
        except ValueError:
            return None

    async def put_audio(
        self, user_id: str, extension: AudioExtension, body: IO[bytes], content_type: str
    ) -> StoredAudio:
        """Store a recording under a new file id."""
        file_id = new_file_id()
        key = audio_object_key(user_id, file_id, extension)
        extra = {"ContentType": content_type, **s3.put_kwargs(self.settings)}
        await asyncio.to_thread(self.client.upload_fileobj, body, self.bucket, key, ExtraArgs=extra)
        return StoredAudio(file_id, extension, key)

    def presign_put(
        self, user_id: str, extension: AudioExtension, expires_s: int
    ) -> tuple[StoredAudio, str, dict[str, str]]:
        """A presigned PUT URL for a new recording of ``user_id`` (signing is local).

        Returns:
            The recording to be, the URL, and the headers the PUT must carry: the signature
            covers them (server-side encryption), so a PUT without them is refused.
        """
        file_id = new_file_id()
        key = audio_object_key(user_id, file_id, extension)
        extra = s3.put_kwargs(self.settings)
        params = {"Bucket": self.bucket, "Key": key, **extra}
        url = self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_s)
        return StoredAudio(file_id, extension, key), url, self._header_names(extra)

    def _header_names(self, params: dict[str, str]) -> dict[str, str]:
        """PutObject parameters as the HTTP headers they travel in (names from botocore's model)."""
        shape = self.client.meta.service_model.operation_model("PutObject").input_shape
        members = shape.members if shape is not None else {}
        headers = {}
        for name, value in params.items():
            wire = members[name].serialization if name in members else {}
            if wire.get("location") != "header":
                raise ValueError(f"PutObject parameter {name} is not a header")
            headers[str(wire["name"])] = value
        return headers

    async def get_json(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        return await asyncio.to_thread(self._get, key)

    def _get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    async def reachable(self) -> bool:
        """Whether the bucket answers now."""
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except Exception:  # noqa: BLE001 - any failure is "not reachable" for readiness
            return False
        return True
