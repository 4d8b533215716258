"""Request body limits enforced while the body streams in, before it is buffered or spooled."""

import json
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATH = re.compile(r"^/uploads/[^/]+/?$")
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and small fields around the file


def too_large(limit: int) -> HTTPException:
    """The 413 a body over ``limit`` bytes gets."""
    return HTTPException(413, f"The request body is over the {limit}-byte limit.")


class BodyLimitMiddleware:
    """Refuses a request whose body is over its route's limit with 413.

    A declared ``Content-Length`` over the limit is refused before any byte is read; a
    chunked or lying body is counted as it arrives and cut off at the limit (the route's
    body parsing then answers 413). Uploads get ``max_upload_bytes`` plus the multipart
    framing; every other route ``max_body_bytes``.
    """

    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_body_bytes: int) -> None:
        """Wrap ``app`` with the two limits."""
        self.app = app
        self.upload_limit = max_upload_bytes + MULTIPART_OVERHEAD
        self.body_limit = max_body_bytes

    def limit_for(self, scope: Scope) -> int:
        """The body limit of the request ``scope`` describes."""
        if scope["method"] == "POST" and UPLOAD_PATH.match(scope["path"]):
            return self.upload_limit
        return self.body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (other ASGI scopes pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _send_413(send, limit)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, counted, send)


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": too_large(limit).detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
