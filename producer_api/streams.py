"""The replica's bound on open event streams, and their end when the server shuts down.

:class:`StreamSlots` counts the open ``GET /tasks/{task_id}/events`` streams: at most
``MEDVOICE_API__SSE_MAX_STREAMS`` at once (the route then answers 503 with Retry-After); a
stream gives its slot back however it ends (final status, client gone, error, shutdown).

Shutdown: uvicorn's graceful shutdown waits for open responses to finish, for up to
``MEDVOICE_API__SHUTDOWN_GRACE_S``, and then cancels them. A stream would otherwise last
until its task is final, so :meth:`StreamSlots.watch_signals` chains a handler in front of
the server's own SIGTERM/SIGINT handler that sets :attr:`StreamSlots.closing`: every open
stream then ends cleanly at once (the client reconnects, to another replica behind a
balancer), and the grace period is left to the other requests. Where no handler can be set
(not the main thread), the grace period still bounds the shutdown: uvicorn cancels the
streams when it runs out.
"""

import asyncio
import signal
import threading
from types import FrameType
from typing import Any

from producer_api import metrics

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # the signals uvicorn shuts down on


class StreamSlots:
    """Open event streams of this replica, bounded; ``closing`` is set at shutdown."""

    def __init__(self, limit: int) -> None:
        """Allow ``limit`` streams at once."""
        self.limit = limit
        self.open = 0
        self.closing = asyncio.Event()
        self._previous: dict[int, Any] = {}
        self._handler: Any = None

    def acquire(self) -> bool:
        """Take a slot; False when all are taken (or the server is shutting down)."""
        if self.open >= self.limit or self.closing.is_set():
            metrics.SSE_STREAMS_REFUSED.inc()
            return False
        self.open += 1
        metrics.SSE_STREAMS_OPEN.inc()
        return True

    def release(self, end: str) -> None:
        """Give a slot back; ``end`` (one of ``metrics.SSE_STREAM_ENDS``) says how it ended."""
        self.open -= 1
        metrics.SSE_STREAMS_OPEN.dec()
        metrics.SSE_STREAMS_ENDED.labels(end).inc()

    def close(self) -> None:
        """End every open stream and refuse new ones (the server is shutting down)."""
        self.closing.set()

    def watch_signals(self) -> None:
        """Call :meth:`close` on SIGTERM/SIGINT, then the handler that was there before.

        Called in the app's lifespan, i.e. after uvicorn installed its handlers. A no-op
        off the main thread (Python allows signal handlers only there).
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()

        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self.close)  # safe from a signal handler
            previous = self._previous.get(signum, signal.SIG_DFL)
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:  # what would have happened without us
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

        self._handler = handler
        for sig in SHUTDOWN_SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)

    def unwatch_signals(self) -> None:
        """Put back the handlers :meth:`watch_signals` replaced (where still ours)."""
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) is self._handler:
                signal.signal(sig, previous)
        self._previous.clear()
