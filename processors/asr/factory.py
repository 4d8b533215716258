"""Build the configured ASR backend."""

from processors.asr.base import AsrBackend
from processors.settings import WorkerSettings


def make_backend(settings: WorkerSettings) -> AsrBackend:
    """Return the backend named by ``MEDVOICE_ASR_BACKEND``, ready to use."""
    if settings.asr_backend == "riva":
        from processors.asr.riva import RivaBackend

        return RivaBackend.from_settings(settings)
    from processors.asr.whisper import WhisperBackend

    return WhisperBackend(
        settings.whisper_model,
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        cpu_threads=settings.whisper_cpu_threads,
        beam_size=settings.whisper_beam_size,
    )
