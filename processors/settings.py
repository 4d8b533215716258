"""The worker's settings (env prefix ``MEDVOICE_``)."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from medvoice_common.env_check import StrictEnvSettings
from medvoice_common.settings import ENV_CONFIG, CommonSettings


class WorkerOptions(BaseModel):
    """How one worker process consumes and processes (``MEDVOICE_WORKER__*``)."""

    app_id: str = "medvoice-worker"  # also the consumer group and the changelog topics' prefix
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    store: str = "memory://"  # production: rocksdb:// (local state survives a restart)
    data_dir: Path = Path("/tmp/medvoice-worker")  # noqa: S108 - Faust's table dir; k8s mounts a volume
    decode_concurrency: int = Field(default=1, ge=1)
    # Records of a work topic handled at once by one worker (per agent; one task's records
    # never run together). 1 suits CPU whisper; a GPU Riva server batches concurrent
    # requests, so e.g. 32 there.
    max_in_flight: int = Field(default=1, ge=1, le=1024)
    # Longest a Kafka fetch waits on the broker for records. Apache Kafka answers a fetch as
    # soon as a record arrives; a broker that holds every fetch for its whole wait (the
    # embedded dev broker) delays an idle worker by up to this. 1500: Faust's own value
    # (at 100, 2 of 12 SIGKILL runs stalled in table recovery; not understood yet).
    fetch_max_wait_ms: int = Field(default=1500, ge=10, le=1500)
    session_timeout_s: float = 10.0  # a dead worker's partitions move after this
    heartbeat_s: float = 2.0
    max_audio_s: float = Field(default=3 * 3600, gt=0)  # longer recordings fail: audio_too_long
    max_object_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    max_attempts: int = Field(default=5, ge=1)  # for transient failures, then dead letter
    retry_base_s: float = 1.0  # first backoff; doubles each attempt; the upper half jittered
    retry_max_s: float = 60.0
    # SIGTERM: the worker is gone within this (hard exit if the graceful stop hangs). On
    # SIGTERM and on a rebalance, in-flight work gets half of it to finish, then is cancelled.
    shutdown_grace_s: float = Field(default=30.0, gt=0)
    # Deliveries of one task that started and never reached an outcome (OOM kill, native
    # crash): at this many, the next delivery dead-letters it as worker_crashed.
    max_deliveries: int = Field(default=3, ge=1)


class AsrOptions(BaseModel):
    """Which engine recognises speech, and how audio is cut for it (``MEDVOICE_ASR__*``)."""

    backend: Literal["whisper", "riva"] = "whisper"
    chunk_s: float = Field(default=60.0, ge=5.0, le=900.0)  # longest audio one ASR call gets
    vocabulary_file: Path | None = None  # one term per line; empty: no vocabulary guard

    @model_validator(mode="after")
    def _vocabulary_readable(self) -> "AsrOptions":
        if self.vocabulary_file is not None and not self.vocabulary_file.is_file():
            raise ValueError(f"MEDVOICE_ASR__VOCABULARY_FILE: {self.vocabulary_file} is not a file")
        return self


class WhisperOptions(BaseModel):
    """The embedded faster-whisper engine (``MEDVOICE_WHISPER__*``)."""

    model: str = ""  # a CTranslate2 model path or name; empty: the bundled tiny.en
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = ""  # empty: int8 on CPU, float16 on CUDA
    cpu_threads: int = Field(default=0, ge=0)  # 0: CTranslate2 decides
    beam_size: int = Field(default=5, ge=1)
    # False: temperature 0 only, so the same audio always gives the same text (faster-
    # whisper's default re-decodes a degenerate-looking window by random sampling).
    temperature_fallback: bool = True


class RivaOptions(BaseModel):
    """The NVIDIA Riva client (``MEDVOICE_RIVA__*``)."""

    uri: str = "127.0.0.1:50051"
    use_ssl: bool = False
    ssl_ca_file: Path | None = None
    api_key: SecretStr | None = None
    function_id: str | None = None  # NVIDIA-hosted Riva (NVCF)
    language_code: str = "en-US"
    model: str = ""  # empty: the server's default offline ASR model
    automatic_punctuation: bool = True
    word_time_offsets: bool = True
    diarization: bool = False
    max_speakers: int = Field(default=2, ge=1)
    boost_score: float = 20.0  # Riva's recommended range for word boosting is 20-100
    max_message_mb: int = Field(default=64, ge=4)
    # Chunks of one long recording in flight at once, so the server can batch them.
    parallel_chunks: int = Field(default=4, ge=1)
    deadline_s: float = Field(default=120.0, gt=0)


class WorkerSettings(CommonSettings, StrictEnvSettings):
    """Everything a worker is configured by."""

    model_config = ENV_CONFIG

    asr: AsrOptions = Field(default_factory=AsrOptions)
    whisper: WhisperOptions = Field(default_factory=WhisperOptions)
    riva: RivaOptions = Field(default_factory=RivaOptions)
    worker: WorkerOptions = Field(default_factory=WorkerOptions)

    @property
    def faust_app_id(self) -> str:
        """The Faust app id with the deployment's topic prefix."""
        return f"{self.kafka.topic_prefix}{self.worker.app_id}"
