"""``python -m processors``: run one worker, configured by settings alone."""

import asyncio
import sys

import faust

from medvoice_common.logs import configure
from medvoice_common.startup import wait_for_kafka, wait_for_s3
from processors.app import create_app
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
    app, _ = create_app(ctx)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        override_logging=False,  # keep the JSON lines configured above
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
