"""``python -m producer_api``: serve the API, configured by settings alone."""

import sys

import uvicorn

from medvoice_common.logs import configure
from producer_api.main import create_app
from producer_api.settings import ApiSettings


def main() -> int:
    """Serve until SIGINT/SIGTERM; returns the exit status."""
    try:
        settings = ApiSettings()
    except ValueError as exc:  # pydantic's ValidationError and unknown MEDVOICE_* names
        sys.stderr.write(f"invalid settings:\n{exc}\n")
        return 2
    configure(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,  # keep our JSON logging
        access_log=False,  # paths carry user ids; requests are counted in /metrics instead
        timeout_graceful_shutdown=int(settings.api.shutdown_grace_s),
        http=settings.api.http,
        h11_max_incomplete_event_size=settings.api.max_header_bytes,  # request line + headers
        limit_concurrency=settings.api.limit_concurrency,  # beyond it: 503, not memory growth
        timeout_keep_alive=settings.api.keep_alive_s,
        server_header=False,  # no version banner
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
