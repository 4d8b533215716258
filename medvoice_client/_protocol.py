"""What the sync and async clients share: request shapes, error mapping, upload sources.

No I/O here: each client sends what these functions describe with its own httpx client.
"""

import base64
import binascii
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import httpx

from medvoice_client.errors import ApiError, Unreachable
from schemas.ids import AudioExtension

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes sent so far, total bytes) while a recording uploads."""
Source = Path | str | bytes | IO[bytes]
"""A recording: a path, its bytes, or a binary file open for reading."""

CHUNK_BYTES = 64 * 1024
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
UPLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0, write=300.0)
# Statuses after which a submission is retried with the same Idempotency-Key: the API says
# the task may not be confirmed yet (500), another try with this key is running (409, with
# Retry-After), or it (or a proxy in front of it) is briefly unavailable.
SUBMIT_RETRY_STATUSES = frozenset({409, 500, 502, 503, 504})
SUBMIT_ATTEMPTS = 4
RETRY_BASE_S = 0.5
MAX_RETRY_AFTER_S = 30.0
_S3_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")


def error_from(resp: httpx.Response) -> ApiError:
    """The API's refusal as an exception (the response must have been read)."""
    detail: Any = None
    try:
        body = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
    if not isinstance(detail, str | list):
        detail = resp.reason_phrase or f"HTTP {resp.status_code}"
    return ApiError(
        resp.status_code,
        detail,
        method=resp.request.method,
        path=resp.request.url.path,
        retry_after_s=retry_after_s(resp),
    )


def checked(resp: httpx.Response) -> httpx.Response:
    """``resp`` when it is a success; raises :class:`ApiError` otherwise."""
    if resp.is_success:
        return resp
    raise error_from(resp)


def unreachable(exc: httpx.TransportError, base_url: httpx.URL | str) -> Unreachable:
    """A transport failure as the client reports it (the URL's origin, never a query)."""
    url = httpx.URL(str(base_url))
    where = f"{url.scheme}://{url.netloc.decode()}" if url.host else str(base_url)
    kind = type(exc).__name__
    return Unreachable(f"the MedVoice API at {where} could not be reached ({kind}: {exc})")


def retry_after_s(resp: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta or HTTP date), or None."""
    raw = resp.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def submit_retry_pause_s(attempt: int, resp: httpx.Response | None) -> float:
    """How long to wait before submission try ``attempt + 1`` (Retry-After when given)."""
    given = retry_after_s(resp) if resp is not None else None
    if given is not None:
        return min(given, MAX_RETRY_AFTER_S)
    return float(RETRY_BASE_S * 2**attempt)


def submit_params(
    file_id: str, file_extension: AudioExtension | str, file_name: str | None
) -> dict[str, str]:
    """The query of ``POST /process_audio_v2/{user_id}``."""
    params = {"file_id": file_id, "file_extension": AudioExtension(file_extension).value}
    if file_name is not None:
        params["file_name"] = file_name
    return params


def task_path(task_id: UUID | str) -> str:
    """``/tasks/{task_id}`` (the id checked as a UUID: it never smuggles a path)."""
    try:
        return f"/tasks/{UUID(str(task_id))}"
    except ValueError:
        raise ValueError(f"not a task id (a UUID): {str(task_id)[:64]!r}") from None


def user_of(token: str) -> str | None:
    """The ``sub`` claim of a JWT, read without verifying it (the API verifies)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


def extension_of(name: str | None, given: AudioExtension | str | None) -> AudioExtension:
    """The recording's container: ``given``, else its name's suffix."""
    if given is not None:
        return AudioExtension(given)
    suffix = Path(name or "").suffix.lower().lstrip(".")
    try:
        return AudioExtension(suffix)
    except ValueError:
        known = ", ".join(e.value for e in AudioExtension)
        raise ValueError(
            f"cannot tell the recording's format from its name; give file_extension ({known})"
        ) from None


@dataclass
class Recording:
    """An upload source opened for reading: its name, bytes and size."""

    name: str
    file: IO[bytes]
    size: int
    owned: bool  # opened here, so closed here

    def close(self) -> None:
        """Close the file when this object opened it."""
        if self.owned:
            self.file.close()


def open_recording(source: Source, filename: str | None = None) -> Recording:
    """``source`` as a :class:`Recording` (a path is opened; bytes are wrapped)."""
    if isinstance(source, Path | str):
        path = Path(source)
        file = path.open("rb")
        return Recording(filename or path.name, file, path.stat().st_size, owned=True)
    if isinstance(source, bytes):
        return Recording(filename or "recording", io.BytesIO(source), len(source), owned=True)
    start = source.tell()
    size = source.seek(0, io.SEEK_END) - start
    source.seek(start)
    return Recording(
        filename or Path(getattr(source, "name", "recording")).name, source, size, False
    )


class ProgressFile:
    """A binary file that reports how much of it has been read (what httpx sends)."""

    def __init__(self, recording: Recording, progress: ProgressCallback | None) -> None:
        self._file = recording.file
        self._start = recording.file.tell()
        self._size = recording.size
        self._progress = progress
        self.name = recording.name

    def read(self, size: int = -1) -> bytes:
        """Read and report."""
        chunk = self._file.read(size)
        if self._progress is not None:
            self._progress(self.tell(), self._size)
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Seek within the recording (offset 0 is where it started)."""
        if whence == io.SEEK_SET:
            offset += self._start
        return self._file.seek(offset, whence) - self._start

    def tell(self) -> int:
        """The position within the recording."""
        return self._file.tell() - self._start


def s3_error(resp: httpx.Response) -> ApiError:
    """A refused presigned PUT as an :class:`ApiError` (S3's error code, not its body)."""
    code = _S3_CODE.search(resp.text)
    reason = f"S3 refused the upload ({code.group(1) if code else resp.reason_phrase})"
    return ApiError(resp.status_code, reason, method="PUT", path="(presigned URL)")
