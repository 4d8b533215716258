"""``python -m processors``: run one worker, configured by settings alone."""

import asyncio
import sys

import faust

from medvoice_common.logs import configure
from medvoice_common.startup import wait_for_kafka, wait_for_s3
from processors.app import create_app
from processors.lifecycle import run_worker
from processors.settings import WorkerSettings
from processors.startup import build_context


def main() -> int:
    """Start the worker; returns the process exit status."""
    try:
        settings = WorkerSettings()
    except ValueError as exc:  # pydantic's ValidationError and unknown MEDVOICE_* names
        sys.stderr.write(f"invalid settings:\n{exc}\n")
        return 2
    configure(settings.log_level)
    asyncio.run(wait_for_s3(settings))
    asyncio.run(wait_for_kafka(settings))
    ctx = build_context(settings)
    app, processor = create_app(ctx)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        override_logging=False,  # keep the JSON lines configured above
        redirect_stdouts=False,
    )
    run_worker(worker, processor.liveness)  # exits the process when the worker stops


if __name__ == "__main__":
    raise SystemExit(main())
