"""``python -m producer_api``: serve the API, configured by settings alone."""

import asyncio
import sys
from typing import Any

import uvicorn

from medvoice_common.logs import configure
from producer_api import header_limit
from producer_api.main import create_app
from producer_api.settings import ApiOptions, ApiSettings


def server_options(api: ApiOptions) -> dict[str, Any]:
    """uvicorn's options for these settings (the benchmark's reference apps use them too).

    httptools parses with the header-size limit of :mod:`producer_api.header_limit`; h11
    enforces it itself. The event loop is uvloop where it is installed (uvicorn's ``auto``).
    """
    http: type[asyncio.Protocol] | str = (
        header_limit.protocol_class(api.max_header_bytes) if api.http == "httptools" else "h11"
    )
    return {
        "host": api.host,
        "port": api.port,
        "log_config": None,  # keep our JSON logging
        "access_log": False,  # paths carry user ids; requests are counted in /metrics instead
        "timeout_graceful_shutdown": int(api.shutdown_grace_s),
        "http": http,
        "h11_max_incomplete_event_size": api.max_header_bytes,  # request line + headers
        "limit_concurrency": api.limit_concurrency,  # beyond it: 503, not memory growth
        "timeout_keep_alive": api.keep_alive_s,
        "server_header": False,  # no version banner
    }


def main() -> int:
    """Serve until SIGINT/SIGTERM; returns the exit status."""
    try:
        settings = ApiSettings()
    except ValueError as exc:  # pydantic's ValidationError and unknown MEDVOICE_* names
        sys.stderr.write(f"invalid settings:\n{exc}\n")
        return 2
    configure(settings.log_level)
    uvicorn.run(create_app(settings), **server_options(settings.api))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
