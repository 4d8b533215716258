"""The NVIDIA Riva backend: offline ``Recognize`` over gRPC with nvidia-riva-client."""

import logging
from collections.abc import Iterable
from typing import Any, Self

import grpc
import numpy as np
import numpy.typing as npt
import riva.client
from riva.client.proto import riva_asr_pb2 as rasr

from processors.asr.base import AsrOptions, Transcript
from processors.audio import SAMPLE_RATE
from processors.errors import ErrorCode, TaskError
from processors.settings import RivaOptions, WorkerSettings
from schemas.transcript import CONFIDENCE_MEANING, Segment, Word

log = logging.getLogger(__name__)

CHECK_DEADLINE_S = 5.0  # a readiness probe must answer well inside the probe's own timeout
_MIB = 1024 * 1024
_PCM_BYTES_PER_SAMPLE = 2  # LINEAR_PCM is 16-bit little-endian
_TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,  # the channel went away under the call (shutdown, reset)
    }
)
_CREDENTIAL_CODES = frozenset(
    # Not the request's fault: the same audio succeeds once the operator fixes the key.
    {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
)


class RivaBackend:
    """A Riva ASR server behind the ASR protocol. One channel, shared by the executor's threads."""

    name = "riva"
    confidence_meaning = CONFIDENCE_MEANING["riva"]

    def __init__(self, uri: str, options: RivaOptions | None = None) -> None:
        """Open the channel (lazily: nothing is sent until the first call).

        Args:
            uri: the server's ``host:port``.
            options: client settings; the defaults of :class:`RivaOptions` when omitted.
        """
        self._opts = options or RivaOptions()
        self.model = self._opts.model or "riva (server default offline model)"
        self.parallel_chunks = self._opts.parallel_chunks
        self._max_bytes = self._opts.max_message_mb * _MIB
        metadata: list[list[str]] = []
        if self._opts.function_id:
            metadata.append(["function-id", self._opts.function_id])
        if self._opts.api_key is not None:
            metadata.append(["authorization", f"Bearer {self._opts.api_key.get_secret_value()}"])
        use_ssl = self._opts.use_ssl or self._opts.ssl_ca_file is not None
        if metadata and not use_ssl:
            log.warning("riva credentials configured on a plaintext channel; set use_ssl")
        self._auth = riva.client.Auth(
            ssl_root_cert=self._opts.ssl_ca_file,
            use_ssl=use_ssl,
            uri=uri,
            metadata_args=metadata or None,
            options=[
                ("grpc.max_send_message_length", self._max_bytes),
                ("grpc.max_receive_message_length", self._max_bytes),
            ],
        )
        self._service = riva.client.ASRService(self._auth)

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> Self:
        """Build the backend from the worker's settings."""
        return cls(settings.riva.uri, settings.riva)

    def close(self) -> None:
        """Close the gRPC channel."""
        self._auth.channel.close()

    def transcribe(self, pcm: npt.NDArray[np.float32], options: AsrOptions) -> Transcript:
        """Recognise 16 kHz mono float32 ``pcm`` with one offline ``Recognize`` call.

        Args:
            pcm: the samples, at most one chunk long (the caller chunks long audio).
            options: language and vocabulary to boost.

        Returns:
            The segments, one per Riva result, times relative to the start of ``pcm``.

        Raises:
            TaskError: ``asr_unavailable`` (transient) when the server cannot answer now,
                ``asr_rejected`` (permanent) when it refuses the request.
        """
        audio = to_linear_pcm(pcm)
        if len(audio) + 64 * 1024 > self._max_bytes:  # 64 KiB: room for the config
            raise TaskError(
                ErrorCode.ASR_REJECTED,
                f"The audio is larger than the {self._opts.max_message_mb} MB the speech "
                "recognition service accepts in one request.",
            )
        language_code = self._language_code(options.language)
        request = rasr.RecognizeRequest(config=self._config(language_code, options), audio=audio)
        try:
            response = self._service.stub.Recognize(
                request, metadata=self._auth.get_auth_metadata(), timeout=self._opts.deadline_s
            )
        except grpc.RpcError as exc:
            raise _task_error(exc, "recognize") from None
        segments = results_to_segments(
            response.results, diarization=self._opts.diarization, duration_s=len(pcm) / SAMPLE_RATE
        )
        return Transcript(segments=segments, language=language_code.split("-")[0].lower())

    def check(self) -> None:
        """Ask the server for its ASR models within ``CHECK_DEADLINE_S``.

        Raises:
            TaskError: ``asr_unavailable`` (transient) when the server does not answer, or
                does not serve the configured model.
        """
        request = rasr.RivaSpeechRecognitionConfigRequest(model_name=self._opts.model)
        try:
            response = self._service.stub.GetRivaSpeechRecognitionConfig(
                request, metadata=self._auth.get_auth_metadata(), timeout=CHECK_DEADLINE_S
            )
        except grpc.RpcError as exc:
            raise _task_error(exc, "check") from None
        served = {config.model_name for config in response.model_config}
        if self._opts.model and self._opts.model not in served:
            log.warning("riva model not served", extra={"model": self._opts.model})
            raise TaskError(
                ErrorCode.ASR_UNAVAILABLE,
                "The speech recognition service does not serve the configured model.",
                transient=True,
            )

    def _language_code(self, language: str) -> str:
        """The configured BCP-47 code when it is for ``language``, else ``language`` itself."""
        configured = self._opts.language_code
        if not language or configured.split("-")[0].lower() == language.lower():
            return configured
        return language

    def _config(self, language_code: str, options: AsrOptions) -> Any:
        config = riva.client.RecognitionConfig(
            encoding=riva.client.AudioEncoding.LINEAR_PCM,
            sample_rate_hertz=SAMPLE_RATE,
            audio_channel_count=1,
            language_code=language_code,
            max_alternatives=1,
            enable_automatic_punctuation=self._opts.automatic_punctuation,
            enable_word_time_offsets=self._opts.word_time_offsets,
            verbatim_transcripts=False,
        )
        if self._opts.model:
            config.model = self._opts.model
        if options.vocabulary:
            riva.client.add_word_boosting_to_config(
                config, list(options.vocabulary), self._opts.boost_score
            )
        riva.client.add_speaker_diarization_to_config(
            config, self._opts.diarization, self._opts.max_speakers
        )
        return config


def to_linear_pcm(pcm: npt.NDArray[np.float32]) -> bytes:
    """Float samples in [-1, 1] to 16-bit little-endian PCM bytes (clipped, rounded)."""
    scaled = np.rint(np.clip(pcm, -1.0, 1.0) * 32767.0).astype("<i2")
    return bytes(scaled.tobytes())


def results_to_segments(
    results: Iterable[Any], *, diarization: bool, duration_s: float
) -> list[Segment]:
    """Map Riva ``SpeechRecognitionResult`` protos to segments.

    Each result's first alternative becomes one segment; word times arrive in
    milliseconds. A segment spans its words; without word times it spans from the
    previous segment's end to the result's ``audio_processed``. A segment has a speaker
    only when all its words share one (Riva's tag 0 means "no speaker").

    Args:
        results: ``RecognizeResponse.results``.
        diarization: whether speaker tags were asked for.
        duration_s: length of the audio sent, to bound segment times.

    Returns:
        The non-empty segments, in order.
    """
    segments: list[Segment] = []
    previous_end = 0.0
    for result in results:
        if not result.alternatives:
            continue
        alt = result.alternatives[0]
        text = str(alt.transcript).strip()
        if not text:
            continue
        words = [_word(w, diarization=diarization) for w in alt.words if str(w.word).strip()]
        if words:
            start = words[0].start_s
            end = max(w.end_s for w in words)
        else:
            start = min(previous_end, duration_s)
            processed = float(result.audio_processed)
            end = processed if start < processed <= duration_s else duration_s
        speakers = {w.speaker for w in words}
        speaker = speakers.pop() if len(speakers) == 1 else None
        segments.append(Segment(start_s=start, end_s=end, text=text, words=words, speaker=speaker))
        previous_end = end
    return segments


def _word(info: Any, *, diarization: bool) -> Word:
    """A ``WordInfo`` proto (times in ms) as a word (times in s)."""
    start = max(0.0, int(info.start_time) / 1000.0)
    end = max(start, int(info.end_time) / 1000.0)
    tag = int(info.speaker_tag)
    return Word(
        word=str(info.word).strip(),
        start_s=start,
        end_s=end,
        confidence=round(float(info.confidence), 4),
        speaker=tag if diarization and tag > 0 else None,
    )


def _task_error(exc: grpc.RpcError, call: str) -> TaskError:
    """A safe TaskError for a failed call.

    Only the gRPC code is logged and nothing of the error goes into the message: the
    server's details can echo request content, and the target is an internal address.
    """
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    transient = code in _TRANSIENT_CODES or code in _CREDENTIAL_CODES
    log.warning(
        "riva call failed", extra={"call": call, "grpc_code": code.name, "transient": transient}
    )
    if code in _CREDENTIAL_CODES:
        return TaskError(
            ErrorCode.ASR_UNAVAILABLE,
            "The speech recognition service refused this worker's credentials.",
            transient=True,
        )
    if transient:
        return TaskError(
            ErrorCode.ASR_UNAVAILABLE,
            "The speech recognition service is unavailable; the task will be retried.",
            transient=True,
        )
    return TaskError(
        ErrorCode.ASR_REJECTED,
        "The speech recognition service rejected the audio or its settings.",
        transient=False,
    )
