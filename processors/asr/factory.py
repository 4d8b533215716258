"""Build the configured ASR backend."""

from processors.asr.base import AsrBackend
from processors.settings import WorkerSettings


def make_backend(settings: WorkerSettings) -> AsrBackend:
    """Return the backend named by ``MEDVOICE_ASR__BACKEND``, ready to use."""
    if settings.asr.backend == "riva":
        from processors.asr.riva import RivaBackend

        return RivaBackend.from_settings(settings)
    from processors.asr.whisper import WhisperBackend

    return WhisperBackend(
        settings.whisper.model,
        device=settings.whisper.device,
        compute_type=settings.whisper.compute_type,
        cpu_threads=settings.whisper.cpu_threads,
        beam_size=settings.whisper.beam_size,
        temperature_fallback=settings.whisper.temperature_fallback,
    )
