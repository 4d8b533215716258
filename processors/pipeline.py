"""The steps of one task as plain functions: fetch, check, decode, recognise, store (no Kafka)."""

import asyncio
import io
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from medvoice_common import s3
from medvoice_common.audio_format import HEAD_BYTES, looks_like, probe_duration_s
from processors import metrics
from processors.asr.base import AsrBackend, AsrOptions
from processors.audio import Pcm, decode
from processors.chunking import transcribe_chunked
from processors.errors import ErrorCode, TaskError
from processors.settings import WorkerSettings
from processors.vocabulary import Vocabulary
from schemas.events import AudioSubmitted
from schemas.ids import AudioExtension, audio_object_key, transcript_object_key
from schemas.transcript import TranscriptDocument, VocabularyInfo

if TYPE_CHECKING:  # stubs from the dev extra; the image has no mypy_boto3_s3
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class PipelineContext:
    """What the steps need; built once per worker process."""

    settings: WorkerSettings
    s3: "S3Client"
    backend: AsrBackend
    asr_executor: Executor
    """Pool that runs recognition off the event loop (one thread per task in flight,
    ``MEDVOICE_WORKER__MAX_IN_FLIGHT``; a backend with ``parallel_chunks`` > 1 sends a
    recording's chunks together from there)."""
    io_executor: Executor
    """Pool for blocking S3 calls."""
    decode_executor: Executor
    """Pool for decoding (``MEDVOICE_WORKER__DECODE_CONCURRENCY`` threads): PyAV holds the
    GIL for most of a decode, so more decodes at once than cores only add contention."""
    vocabulary: Vocabulary | None = None


def transcript_uri(ctx: PipelineContext, user_id: str, task_id: str) -> str:
    """The ``s3://`` URI of a task's transcript document."""
    return f"s3://{ctx.settings.s3.bucket}/{transcript_object_key(user_id, task_id)}"


async def _blocking(executor: Executor, fn: "partial[T]") -> T:
    return await asyncio.get_running_loop().run_in_executor(executor, fn)


def _storage_error(exc: BaseException, what: str) -> TaskError:
    if s3.is_transient(exc):
        return TaskError(
            ErrorCode.STORAGE_UNAVAILABLE, f"Storage unavailable ({what}).", transient=True
        )
    return TaskError(ErrorCode.STORAGE_UNAVAILABLE, f"Storage refused the request ({what}).")


def recording_key(event: AudioSubmitted) -> str:
    """The S3 key of the event's recording, rebuilt from its ids (the API's layout).

    The worker never reads a key the event merely names: a record whose ``object_key``
    differs from the key of its own user_id, file_id and file_extension is refused, so a
    forged or corrupted record cannot make the worker read another user's object.

    Raises:
        TaskError: ``object_key_mismatch`` (permanent).
    """
    key = audio_object_key(event.user_id, event.file_id, event.file_extension)
    if event.object_key != key:
        raise TaskError(
            ErrorCode.OBJECT_KEY_MISMATCH,
            "The task's object_key does not match its user_id, file_id and file_extension.",
        )
    return key


def fetch_audio(ctx: PipelineContext, key: str) -> bytes:
    """Download the recording at ``key``.

    Raises:
        TaskError: ``audio_missing``, ``audio_too_large`` or ``storage_unavailable``.
    """
    bucket = ctx.settings.s3.bucket
    limit = ctx.settings.worker.max_object_bytes
    try:
        obj = ctx.s3.get_object(Bucket=bucket, Key=key)
        if obj["ContentLength"] > limit:
            obj["Body"].close()
            raise TaskError(ErrorCode.AUDIO_TOO_LARGE, f"The recording is over {limit} bytes.")
        return obj["Body"].read()
    except ClientError as exc:
        if s3.is_not_found(exc):
            # Transient for a few attempts (an upload may still be landing), then permanent.
            raise TaskError(
                ErrorCode.AUDIO_MISSING, "The recording was not found.", transient=True
            ) from exc
        raise _storage_error(exc, "download") from exc
    except BotoCoreError as exc:
        raise _storage_error(exc, "download") from exc


def admit(data: bytes, extension: AudioExtension, max_audio_s: float) -> None:
    """The API's checks of a direct upload, before any decoding.

    A presigned upload goes straight to S3 and never meets the API, so every recording
    gets them here: its first bytes must be the declared container's, and the duration
    its header states must be within ``max_audio_s`` (decoding also stops at that limit,
    for a header that says less than the file holds).

    Raises:
        TaskError: ``audio_wrong_format`` or ``audio_too_long`` (permanent).
    """
    if not looks_like(extension, data[:HEAD_BYTES]):
        raise TaskError(
            ErrorCode.AUDIO_WRONG_FORMAT,
            f"The file's content is not a {extension.value} recording.",
        )
    duration = probe_duration_s(io.BytesIO(data), extension)
    if duration is not None and duration > max_audio_s:
        raise TaskError(
            ErrorCode.AUDIO_TOO_LONG,
            f"The recording lasts {duration:.0f} s; at most {max_audio_s:.0f} s are accepted.",
        )


def load_existing(ctx: PipelineContext, event: AudioSubmitted) -> TranscriptDocument | None:
    """The transcript already stored for this task, if a previous delivery got that far."""
    key = transcript_object_key(event.user_id, event.task_id)
    try:
        obj = ctx.s3.get_object(Bucket=ctx.settings.s3.bucket, Key=key)
    except ClientError as exc:
        if s3.is_not_found(exc):
            return None
        raise _storage_error(exc, "read transcript") from exc
    except BotoCoreError as exc:
        raise _storage_error(exc, "read transcript") from exc
    return TranscriptDocument.model_validate_json(obj["Body"].read())


def store_document(ctx: PipelineContext, doc: TranscriptDocument) -> None:
    """Write the transcript document to S3 (server-side encrypted when configured)."""
    key = transcript_object_key(doc.user_id, doc.task_id)
    body = doc.model_dump_json().encode()
    try:
        ctx.s3.put_object(
            Bucket=ctx.settings.s3.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            **s3.put_kwargs(ctx.settings),  # type: ignore[arg-type]
        )
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "upload transcript") from exc


def recognise(ctx: PipelineContext, event: AudioSubmitted, pcm: Pcm) -> TranscriptDocument:
    """Run the backend over the whole recording (chunked) and build the document."""
    options = AsrOptions(vocabulary=ctx.vocabulary.terms if ctx.vocabulary else ())
    transcript, chunking = transcribe_chunked(
        ctx.backend,
        pcm.samples,
        options,
        ctx.settings.asr.chunk_s,
        parallel=ctx.backend.parallel_chunks,
    )
    vocab = None
    if ctx.vocabulary is not None:
        boost = ctx.settings.riva.boost_score if ctx.backend.name == "riva" else None
        vocab = VocabularyInfo(
            source=ctx.vocabulary.source, terms_offered=len(ctx.vocabulary.terms), boost=boost
        )
    return TranscriptDocument(
        task_id=event.task_id,
        user_id=event.user_id,
        text=" ".join(s.text for s in transcript.segments),
        language=transcript.language,
        duration_s=round(pcm.duration_s, 3),
        backend=ctx.backend.name,
        model=ctx.backend.model,
        segments=transcript.segments,
        chunking=chunking,
        vocabulary=vocab,
        confidence_meaning=ctx.backend.confidence_meaning,
    )


async def run(ctx: PipelineContext, event: AudioSubmitted) -> tuple[TranscriptDocument, bool]:
    """Produce the task's transcript document, stored in S3.

    Idempotent: when a previous delivery already stored the document, it is returned
    without transcribing again.

    Returns:
        The document, and whether it was computed now (False: it was already stored).

    Raises:
        TaskError: why the task cannot complete (transient or permanent).
    """
    key = recording_key(event)
    existing = await _blocking(ctx.io_executor, partial(load_existing, ctx, event))
    if existing is not None:
        return existing, False
    backend = ctx.backend.name
    timings: dict[str, float] = {}
    with metrics.stage("download", backend, timings):
        data = await _blocking(ctx.io_executor, partial(fetch_audio, ctx, key))
    max_audio_s = ctx.settings.worker.max_audio_s
    with metrics.stage("decode", backend, timings):
        await _blocking(
            ctx.decode_executor, partial(admit, data, event.file_extension, max_audio_s)
        )
        pcm = await _blocking(
            ctx.decode_executor,
            partial(decode, data, event.file_extension, max_duration_s=max_audio_s),
        )
    del data
    started = time.perf_counter()
    with metrics.stage("asr", backend, timings):
        doc = await _blocking(ctx.asr_executor, partial(recognise, ctx, event, pcm))
    metrics.observe_asr(backend, pcm.duration_s, time.perf_counter() - started)
    with metrics.stage("upload", backend, timings):
        await _blocking(ctx.io_executor, partial(store_document, ctx, doc))
    log.info(
        "transcribed",
        extra={
            "task_id": str(event.task_id),
            "audio_s": doc.duration_s,
            "words": len(doc.words),
            "duration_s": round(sum(timings.values()), 3),
            "stages": timings,
        },
    )
    return doc, True
