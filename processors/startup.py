"""What a worker builds before consuming: the ASR backend, vocabulary and thread pools."""

from concurrent.futures import ThreadPoolExecutor

from medvoice_common import s3
from processors.asr.factory import make_backend
from processors.pipeline import PipelineContext
from processors.settings import WorkerSettings
from processors.vocabulary import load_vocabulary

IO_THREADS = 4  # blocking S3 calls (download, transcript upload and read, readiness)


def build_context(settings: WorkerSettings) -> PipelineContext:
    """Load the ASR backend and vocabulary and open the thread pools."""
    vocabulary = (
        load_vocabulary(settings.asr.vocabulary_file) if settings.asr.vocabulary_file else None
    )
    return PipelineContext(
        settings=settings,
        s3=s3.make_client(settings),
        backend=make_backend(settings),
        # One ASR call per task in flight (MEDVOICE_WORKER__MAX_IN_FLIGHT, processors.agents).
        asr_executor=ThreadPoolExecutor(settings.worker.max_in_flight, thread_name_prefix="asr"),
        io_executor=ThreadPoolExecutor(IO_THREADS, thread_name_prefix="io"),
        decode_executor=ThreadPoolExecutor(
            settings.worker.decode_concurrency, thread_name_prefix="decode"
        ),
        vocabulary=vocabulary,
    )
