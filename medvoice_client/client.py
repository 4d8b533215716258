"""The synchronous MedVoice client (httpx)."""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self
from uuid import UUID

import httpx

from medvoice_client import _protocol as p
from medvoice_client.errors import MedVoiceError, WaitTimeout
from medvoice_client.follow import (
    POLL_TRANSIENT,
    SSE_READ_TIMEOUT_S,
    STREAM_ABSENT,
    STREAM_BUSY,
    FollowPlan,
)
from medvoice_client.models import (
    AudioExtension,
    ExportFormat,
    Presign,
    Submitted,
    Task,
    TaskPage,
    TaskStatus,
    Upload,
)
from medvoice_client.sse import iter_events


class Client:
    """A MedVoice API client: upload, submit, wait, fetch transcripts.

    ``token`` is sent as ``Authorization: Bearer``; methods that take a ``user_id`` default
    to the token's subject. ``poll_interval_s``: how often a wait polls when the API has no
    events stream; ``reconnect_s``: the first pause before a broken stream or failed poll is
    retried (doubling while failures repeat, unless the server's ``retry`` says otherwise).

    Every method raises :class:`~medvoice_client.errors.ApiError` (status and the API's
    ``detail``) on a refusal and :class:`~medvoice_client.errors.Unreachable` when the API
    cannot be reached.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: httpx.Timeout | float = p.DEFAULT_TIMEOUT,
        poll_interval_s: float = 1.0,
        reconnect_s: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )
        self.user_id = p.user_of(token) if token else None
        self.poll_interval_s = poll_interval_s
        self.reconnect_s = reconnect_s

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _user(self, user_id: str | None) -> str:
        user = user_id or self.user_id
        if not user:
            raise ValueError("give user_id (the token has no subject to default to)")
        return user

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise p.unreachable(exc, self._http.base_url) from exc

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return p.checked(self._send(method, url, **kwargs))

    # -- recordings ---------------------------------------------------------------------

    def upload(
        self,
        source: p.Source,
        *,
        user_id: str | None = None,
        file_extension: AudioExtension | str | None = None,
        filename: str | None = None,
        progress: p.ProgressCallback | None = None,
    ) -> Upload:
        """Upload a recording (multipart ``POST /uploads/{user_id}``)."""
        recording = p.open_recording(source, filename)
        try:
            ext = p.extension_of(recording.name, file_extension)
            body = p.ProgressFile(recording, progress)
            resp = self._call(
                "POST",
                f"/uploads/{self._user(user_id)}",
                params={"file_extension": ext.value},
                files={"file": (f"recording.{ext.value}", body, "application/octet-stream")},
                timeout=p.UPLOAD_TIMEOUT,
            )
        finally:
            recording.close()
        return Upload.model_validate_json(resp.content)

    def presign(
        self, file_extension: AudioExtension | str, *, user_id: str | None = None
    ) -> Presign:
        """A presigned PUT URL for a new recording (``POST /uploads/{user_id}/presign``)."""
        resp = self._call(
            "POST",
            f"/uploads/{self._user(user_id)}/presign",
            params={"file_extension": AudioExtension(file_extension).value},
        )
        return Presign.model_validate_json(resp.content)

    def upload_presigned(
        self,
        source: p.Source,
        *,
        user_id: str | None = None,
        file_extension: AudioExtension | str | None = None,
        filename: str | None = None,
        progress: p.ProgressCallback | None = None,
    ) -> Upload:
        """Upload a recording straight to S3 with a presigned PUT (the API checks it later)."""
        recording = p.open_recording(source, filename)
        try:
            ext = p.extension_of(recording.name, file_extension)
            target = self.presign(ext, user_id=user_id)
            body = p.ProgressFile(recording, progress)

            def chunks() -> Iterator[bytes]:
                while chunk := body.read(p.CHUNK_BYTES):
                    yield chunk

            headers = {**target.headers, "Content-Length": str(recording.size)}
            try:
                with httpx.Client(timeout=p.UPLOAD_TIMEOUT) as s3:  # no bearer token to S3
                    resp = s3.request(target.method, target.url, content=chunks(), headers=headers)
            except httpx.TransportError as exc:
                raise p.unreachable(exc, target.url) from exc
        finally:
            recording.close()
        if not resp.is_success:
            raise p.s3_error(resp)
        return Upload(
            file_id=target.file_id,
            file_extension=target.file_extension,
            object_key=target.object_key,
        )

    # -- tasks --------------------------------------------------------------------------

    def submit(
        self,
        file_id: str,
        file_extension: AudioExtension | str = AudioExtension.M4A,
        *,
        user_id: str | None = None,
        file_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> UUID:
        """Queue an uploaded recording; returns the task id.

        Sent with an ``Idempotency-Key`` (a fresh one unless given) and retried with the same
        key when the API could not confirm the task (500), another try is in progress (409),
        or the answer was lost: however many tries, one task.
        """
        key = idempotency_key or uuid.uuid4().hex
        url = f"/process_audio_v2/{self._user(user_id)}"
        params = p.submit_params(file_id, file_extension, file_name)
        for attempt in range(p.SUBMIT_ATTEMPTS):
            last = attempt == p.SUBMIT_ATTEMPTS - 1
            try:
                resp = self._http.post(url, params=params, headers={"Idempotency-Key": key})
            except httpx.TransportError as exc:
                if last:
                    raise p.unreachable(exc, self._http.base_url) from exc
                time.sleep(p.submit_retry_pause_s(attempt, None))
                continue
            if resp.status_code in p.SUBMIT_RETRY_STATUSES and not last:
                time.sleep(p.submit_retry_pause_s(attempt, resp))
                continue
            return Submitted.model_validate_json(p.checked(resp).content).task_id
        raise AssertionError("unreachable: the last attempt returns or raises")

    def task(self, task_id: UUID | str) -> Task:
        """A task's status (``GET /tasks/{task_id}``), with the text when completed."""
        return Task.model_validate_json(self._call("GET", p.task_path(task_id)).content)

    def tasks(
        self,
        *,
        user_id: str | None = None,
        status: TaskStatus | None = None,
        since: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TaskPage:
        """One page of the user's tasks, newest first (``GET /users/{user_id}/tasks``)."""
        params = {
            k: str(v)
            for k, v in {"status": status, "since": since, "limit": limit, "cursor": cursor}.items()
            if v is not None
        }
        resp = self._call("GET", f"/users/{self._user(user_id)}/tasks", params=params)
        return TaskPage.model_validate_json(resp.content)

    def follow(self, task_id: UUID | str, *, timeout_s: float | None = None) -> Iterator[Task]:
        """Each new status of the task, up to its final one (SSE, else polling)."""
        path = p.task_path(task_id)
        plan = FollowPlan(poll_interval_s=self.poll_interval_s, reconnect_s=self.reconnect_s)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        def left_s() -> float:
            if deadline is None:
                return SSE_READ_TIMEOUT_S
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(f"task {task_id} is not final after {timeout_s} s")
            return min(left, SSE_READ_TIMEOUT_S)

        while True:
            if plan.use_sse:
                read_s = left_s()
                try:
                    with self._http.stream(
                        "GET",
                        f"{path}/events",
                        headers=plan.stream_headers(),
                        timeout=httpx.Timeout(read_s, connect=10.0),
                    ) as resp:
                        if resp.status_code in STREAM_ABSENT:
                            plan.stream_absent()
                        elif resp.status_code == STREAM_BUSY:
                            plan.stream_busy(p.retry_after_s(resp))
                        elif resp.status_code in POLL_TRANSIENT:
                            plan.stream_ended()
                        elif not resp.is_success:
                            resp.read()
                            raise p.error_from(resp)
                        else:
                            for event in iter_events(resp.iter_bytes(), plan.decoder):
                                if (task := plan.on_event(event)) is not None:
                                    yield task
                                if plan.done:
                                    return
                            plan.stream_ended()
                except httpx.TransportError:
                    plan.stream_ended()
            left_s()
            try:
                resp = self._http.get(path)
            except httpx.TransportError as exc:
                plan.transport_failed(exc, str(self._http.base_url))
            else:
                if resp.status_code in POLL_TRANSIENT:
                    plan.poll_failed(p.error_from(resp))
                else:
                    if task := plan.on_poll(Task.model_validate_json(p.checked(resp).content)):
                        yield task
                    if plan.done:
                        return
            time.sleep(min(plan.pause_s(), left_s()))

    def wait(self, task_id: UUID | str, *, timeout_s: float | None = None) -> Task:
        """The task once completed or failed (see :meth:`follow`)."""
        last: Task | None = None
        for last in self.follow(task_id, timeout_s=timeout_s):  # noqa: B007 - the final one
            pass
        if last is None:
            raise MedVoiceError(f"no status of task {task_id} was seen")
        return last

    # -- transcripts --------------------------------------------------------------------

    def transcript_bytes(
        self, task_id: UUID | str, format: ExportFormat | str = ExportFormat.JSON
    ) -> bytes:
        """The transcript document (json) or an export (txt, srt, vtt), as sent."""
        fmt = ExportFormat(format)
        resp = self._call("GET", f"{p.task_path(task_id)}/transcript", params={"format": fmt.value})
        return resp.content

    def transcript(self, task_id: UUID | str, format: ExportFormat | str = ExportFormat.TXT) -> str:
        """The transcript as text in ``format`` (default: plain text)."""
        return self.transcript_bytes(task_id, format).decode("utf-8")

    def export(
        self, task_id: UUID | str, path: Path | str, format: ExportFormat | str | None = None
    ) -> Path:
        """Write the transcript to ``path`` (format from its suffix unless given)."""
        target = Path(path)
        fmt = ExportFormat(format or target.suffix.lstrip(".").lower() or ExportFormat.JSON)
        target.write_bytes(self.transcript_bytes(task_id, fmt))
        return target
