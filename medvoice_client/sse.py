"""A parser of the ``text/event-stream`` format (the WHATWG HTML standard, 9.2.6).

Bytes are split into lines on CRLF, LF and CR only (not on the other separators that
``str.splitlines`` and httpx's ``iter_lines`` also split on, such as U+2028, which may occur
inside a JSON string), decoded as UTF-8; each blank line dispatches an event. Comments
(``: keep-alive``) and unknown fields are ignored; ``data`` lines are joined with LF; ``id``
persists across events until changed (the value to resend as ``Last-Event-ID``); a trailing
event without its blank line is discarded, as the standard requires for a stream that ends
mid-event.
"""

import re
from codecs import getincrementaldecoder
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

DEFAULT_EVENT = "message"


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event."""

    event: str
    data: str
    id: str | None  # the last event id in effect when it was dispatched
    retry_ms: int | None  # the last reconnection time the server asked for


class SSEDecoder:
    """The standard's parsing state: feed lines, get events."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | None:
        """Process one line; returns the event a blank line dispatches, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerSentEvent(
            event=event or DEFAULT_EVENT,
            data="\n".join(data),
            id=self.last_event_id,
            retry_ms=self.retry_ms,
        )


class LineSplitter:
    """Bytes in, complete lines out (CRLF, LF or CR end a line; a CRLF split across chunks
    counts once)."""

    def __init__(self) -> None:
        self._text = getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._after_cr = False
        self._started = False

    def feed(self, chunk: bytes) -> list[str]:
        """The lines that ``chunk`` completes."""
        text = self._text.decode(chunk)
        if not text:  # an incomplete UTF-8 sequence: wait for the rest
            return []
        if not self._started:  # the standard strips one leading byte order mark
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = False
        lines = []
        start = 0
        for match in _EOL.finditer(text):
            lines.append(self._buffer + text[start : match.start()])
            self._buffer = ""
            start = match.end()
        self._buffer += text[start:]
        self._after_cr = text.endswith("\r") and start == len(text)
        return lines


_EOL = re.compile("\r\n|\r|\n")


def iter_events(
    chunks: Iterable[bytes], decoder: SSEDecoder | None = None
) -> Iterator[ServerSentEvent]:
    """The events of a stream of bytes (``decoder`` keeps the last id across calls)."""
    decoder = decoder or SSEDecoder()
    splitter = LineSplitter()
    for chunk in chunks:
        for line in splitter.feed(chunk):
            if (event := decoder.feed(line)) is not None:
                yield event


async def aiter_events(
    chunks: AsyncIterable[bytes], decoder: SSEDecoder | None = None
) -> AsyncIterator[ServerSentEvent]:
    """The events of an asynchronous stream of bytes."""
    decoder = decoder or SSEDecoder()
    splitter = LineSplitter()
    async for chunk in chunks:
        for line in splitter.feed(chunk):
            if (event := decoder.feed(line)) is not None:
                yield event
