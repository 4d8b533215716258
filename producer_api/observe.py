"""Request metrics and the last-resort error answer, as a pure ASGI middleware.

(Starlette's ``@app.middleware("http")`` wraps every request in extra tasks and streams;
on the seed endpoint that cost as much as the endpoint itself.)
"""

import logging
import time

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer_api import metrics

log = logging.getLogger(__name__)


def route_of(scope: Scope) -> str:
    """The matched route's template (the router records it in the scope), never the raw path.

    ``unmatched`` when no route matched (404) or the request was refused before routing.
    """
    path = getattr(scope.get("route"), "path", None)
    return str(path) if path else "unmatched"


# Every label value comes from a closed set: a client's made-up method (HTTP allows any
# token) would otherwise create a new time series per request, without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_of(scope: Scope) -> str:
    """The request's method when it is a standard one, else ``other``."""
    method = str(scope.get("method", ""))
    return method if method in KNOWN_METHODS else "other"


class ObserveMiddleware:
    """Counts and times every HTTP request; turns an unhandled error into a bare JSON 500."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (other ASGI scopes pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        responded = False

        async def record_status(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        except Exception:
            # No stack trace or internal address reaches the client; the log has it.
            log.exception("unhandled error", extra={"route": route_of(scope)})
            if not responded:
                await JSONResponse({"detail": "Internal error."}, status_code=500)(
                    scope, receive, send
                )
            status = 500
        finally:
            route, method = route_of(scope), method_of(scope)
            metrics.HTTP_SECONDS.labels(route, method).observe(time.perf_counter() - started)
            metrics.HTTP_REQUESTS.labels(route, method, f"{status // 100}xx").inc()
