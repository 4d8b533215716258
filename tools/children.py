"""Child processes that never outlive the launcher that started them (``make dev``).

Each child runs in its own session (a signal meant for the launcher, such as Ctrl-C on the
terminal, reaches the launcher only, which then stops the children in order), so each child
is also its own process group: stopping one signals the whole group. On Linux each child also
gets ``PR_SET_PDEATHSIG`` = SIGKILL, so even a launcher killed with SIGKILL (which it cannot
catch) takes its children with it. The children are started with the stop signals blocked
in the launcher, so a signal never lands between "started" and "registered".
"""

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.1  # how often a stop looks whether the children have exited
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


@contextmanager
def signals_deferred() -> Iterator[set[int]]:
    """Block the stop signals meanwhile; a pending one is delivered on exit. Yields the old mask."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield old
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _in_child(parent: int, mask: set[int]) -> Callable[[], None]:
    """What a child runs between fork and exec: die with ``parent``, unblock its signals."""

    def run() -> None:
        if _LIBC is not None:
            if _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
            if os.getppid() != parent:  # the launcher died before prctl: follow it now
                os.kill(os.getpid(), signal.SIGKILL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    return run


def dies_with_parent() -> bool:
    """Whether a SIGKILLed launcher takes its children with it (Linux only)."""
    return _LIBC is not None


@dataclass
class Child:
    """One started process: ``tier`` orders the stop (higher tiers stop first).

    A service runs until stopped; a step (``service`` false) exits by itself when done.
    """

    name: str
    proc: "subprocess.Popen[bytes]"
    tier: int
    service: bool = True

    def alive(self) -> bool:
        """Whether the process itself is still running."""
        return self.proc.poll() is None

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the child's process group (it and anything it started)."""
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass  # the group is empty: nothing left to stop


@dataclass
class Children:
    """Every process the launcher started, and how to stop them all."""

    log_dir: Path
    started: list[Child] = field(default_factory=list)
    hurry: bool = False  # set by a second stop signal: SIGKILL whatever is left, now
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(
        self, name: str, argv: list[str], env: Mapping[str, str], *, tier: int
    ) -> "subprocess.Popen[bytes]":
        """Start ``argv`` with exactly ``env``, output appended to ``log_dir/<name>.log``."""
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        return self.spawn(name, tier)(argv, log, env, True)

    def spawn(
        self, name: str, tier: int
    ) -> Callable[[list[str], IO[bytes], Mapping[str, str], bool], "subprocess.Popen[bytes]"]:
        """A starter for processes named ``name`` writing to a log the caller opened.

        Its last argument: a service (True) or a step that exits by itself (False).
        """

        def start(
            argv: list[str], log: IO[bytes], env: Mapping[str, str], service: bool
        ) -> "subprocess.Popen[bytes]":
            with signals_deferred() as mask:
                proc = subprocess.Popen(
                    argv,
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # terminal signals reach the launcher only
                    preexec_fn=_in_child(os.getpid(), mask),  # no threads in the launcher
                )
                self.started.append(Child(name, proc, tier, service))
            return proc

        return start

    def exited(self) -> list[Child]:
        """The services whose process has exited (steps are meant to)."""
        return [c for c in self.started if c.service and not c.alive()]

    def stop(self, grace_s: float) -> list[str]:
        """Stop every child, highest tier first; returns the names that needed SIGKILL.

        Each tier gets SIGTERM (to every process group), then up to ``grace_s`` to exit;
        whatever is left then (or at once when ``hurry`` is set) gets SIGKILL. Finally every
        group gets SIGKILL, for anything a child started and left behind.
        """
        killed: list[str] = []
        for tier in sorted({c.tier for c in self.started}, reverse=True):
            group = [c for c in self.started if c.tier == tier]
            for child in group:
                if child.alive():
                    child.signal_group(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while any(c.alive() for c in group) and time.monotonic() < deadline:
                if self.hurry:
                    break
                time.sleep(POLL_S)  # waiting for the children to exit
            for child in group:
                if child.alive():
                    killed.append(child.name)
                    child.signal_group(signal.SIGKILL)
                    child.proc.wait()
        for child in self.started:
            child.signal_group(signal.SIGKILL)  # stragglers in an exited child's group
        for log in self._logs:
            log.close()
        return killed
