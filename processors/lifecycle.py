"""Whether this worker can still make progress, and the bound on how long it takes to stop.

A worker that cannot make progress (an event it can neither finish nor reroute) says so on
``/healthz`` and asks itself to stop; a graceful stop that hangs (Faust waiting for an event
that never ends, a blocked thread) ends in a hard exit once the grace period is spent, so
the orchestrator restarts the worker and the uncommitted records are delivered again.
"""

import logging
import os
import sys
import threading
from typing import Any, NoReturn

log = logging.getLogger(__name__)
HARD_EXIT_CODE = 70  # EX_SOFTWARE: the graceful stop did not finish within its grace period


class Liveness:
    """What ``/healthz`` reports: ok until something marks the worker stuck."""

    def __init__(self) -> None:
        """Start healthy."""
        self.problem: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the worker can make progress."""
        return self.problem is None

    def fail(self, problem: str) -> None:
        """Report that the worker cannot make progress (the first reason is kept)."""
        if self.problem is None:
            self.problem = problem


class HardExit:
    """Ends the process ``grace_s`` after :meth:`arm` unless it has exited by then."""

    def __init__(self, grace_s: float, code: int = HARD_EXIT_CODE) -> None:
        """Bound a stop to ``grace_s`` seconds; ``code`` is the exit status of a hard exit."""
        self.grace_s = grace_s
        self.code = code
        self._timer: threading.Timer | None = None

    @property
    def armed(self) -> bool:
        """Whether the countdown runs."""
        return self._timer is not None

    def arm(self, why: str) -> None:
        """Start the countdown (once; later calls keep the first deadline)."""
        if self._timer is not None:
            return
        log.warning("stopping; hard exit if not stopped in time", extra={"why": why})
        # A thread, not the event loop: the loop may be what hangs.
        self._timer = threading.Timer(self.grace_s, self._exit)
        self._timer.daemon = True
        self._timer.start()

    def _exit(self) -> None:
        log.critical(
            "graceful stop did not finish within the grace period; exiting",
            extra={"grace_s": self.grace_s},
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(self.code)


def run_worker(worker: Any, liveness: Liveness) -> NoReturn:
    """Run the Faust ``worker``; end the process as soon as its graceful stop is done.

    A cancelled transcription can still occupy an executor thread (a native call cannot be
    interrupted), and the interpreter would join that thread before exiting: the process
    ends with ``os._exit`` instead, once Faust has committed and left the group. A worker
    that stopped itself because it could not make progress exits with status 1.
    """
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    if code == 0 and not liveness.ok:
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
