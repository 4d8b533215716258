"""uvicorn's httptools server with the request-head size limit h11 enforces by itself.

httptools (llhttp) parses faster than h11 but has no bound on the request line and
headers: a client could make the API buffer an endless header. This protocol refuses a
request with ``431 Request Header Fields Too Large`` (and closes the connection) when

* the request line's target plus the header names and values it has parsed are over
  ``max_head_bytes`` (exact, checked as each header completes), or
* the bytes received while the head is still incomplete are over ``max_head_bytes``
  (bounds what a header that never ends can make the parser buffer; a head that
  starts within a read that completes an earlier request is counted from the next read).

It relies on uvicorn's ``HttpToolsProtocol`` callbacks (``on_message_begin``, ``on_url``,
``on_header``, ``on_headers_complete``, ``on_message_complete``, ``data_received`` and
``send_400_response``, through which uvicorn answers a parser error): :func:`protocol_class`
fails at start-up when one is gone.
"""

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

RELIED_ON = (
    "on_message_begin",
    "on_url",
    "on_header",
    "on_headers_complete",
    "on_message_complete",
    "data_received",
    "send_400_response",
)
BODY = b"Request line and headers are over the size limit."
RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + BODY
)


class HeadTooLargeError(Exception):
    """Raised from a parser callback: httptools stops, uvicorn answers through send_400."""


class HeaderLimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` answering 431 to a request head over ``max_head_bytes``."""

    max_head_bytes = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As uvicorn's protocol; starts waiting for a request head."""
        super().__init__(*args, **kwargs)
        self._in_head = True  # between messages or inside a head: raw bytes are counted
        self._raw_head_bytes = 0
        self._head_bytes = 0  # parsed: target, header names and values
        self._too_large = False

    def data_received(self, data: bytes) -> None:
        """Parse ``data``; refuse the request when its head is still growing past the limit."""
        if self._in_head:
            self._raw_head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._raw_head_bytes > self.max_head_bytes and not self._too_large:
            self._refuse()

    def on_message_begin(self) -> None:
        """A new request: its parsed head starts empty."""
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        """Count the request target (it may come in pieces)."""
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count one complete header."""
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete: its body's bytes are not counted."""
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request is complete: what follows is the next request's head."""
        super().on_message_complete()
        self._in_head, self._raw_head_bytes = True, 0

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error: 431 when it was ours."""
        if self._too_large:
            self._refuse()
        else:
            super().send_400_response(msg)

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.max_head_bytes:
            self._too_large = True
            raise HeadTooLargeError

    def _refuse(self) -> None:
        self._too_large = True
        if not self.transport.is_closing():
            self.transport.write(RESPONSE)
            self.transport.close()


def protocol_class(max_head_bytes: int) -> type[HeaderLimitedHttpToolsProtocol]:
    """The protocol class to give uvicorn's ``http`` option, with this limit.

    Raises:
        RuntimeError: this uvicorn's httptools protocol lacks a method the limit relies on.
    """
    missing = [name for name in RELIED_ON if not callable(getattr(HttpToolsProtocol, name, None))]
    if missing:
        raise RuntimeError(
            f"uvicorn's HttpToolsProtocol lacks {', '.join(missing)}: the header-size limit "
            "cannot be enforced with MEDVOICE_API__HTTP=httptools; use h11"
        )
    return type(
        "HeaderLimitedHttpToolsProtocol",
        (HeaderLimitedHttpToolsProtocol,),
        {"max_head_bytes": max_head_bytes},
    )
