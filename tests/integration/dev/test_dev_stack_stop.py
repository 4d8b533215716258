"""Stopping ``make dev`` leaves no process and no port behind, whichever way it is stopped.

Before, only Ctrl-C (KeyboardInterrupt) stopped the children: after a SIGTERM or SIGHUP the
broker, S3 server, API and worker ran on, holding their ports. Each test starts a whole
stack (the broker, S3, API and worker processes are what is checked), waits until it is
ready, notes every process under the launcher and every port they listen on, stops it, and
checks that all of them are gone.
"""

import os
import signal
import sys
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs in the dev extra
import pytest

from tests.integration.dev.launcher import (
    STOP_TIMEOUT_S,
    DevStack,
    listening_ports,
    role,
    wait_gone,
    wait_ports_free,
)

pytestmark = pytest.mark.integration

PARTS = {"broker", "s3", "worker", "api"}


def _running(stack: DevStack) -> tuple[list[psutil.Process], set[int]]:
    """The ready stack's processes (all four parts among them) and the ports they listen on."""
    stack.wait_ready()
    procs = stack.descendants()
    parts = {role(p) for p in procs}
    assert parts >= PARTS, parts
    ports = listening_ports(procs)
    assert ports >= stack.ports.all(), (ports, stack.ports)
    return procs, ports


def _assert_nothing_left(stack: DevStack, procs: list[psutil.Process], ports: set[int]) -> None:
    assert wait_gone(procs) == [], stack.output()
    assert wait_ports_free(ports) == []


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["SIGINT-ctrl-c-on-the-terminal", "SIGTERM-from-a-process-manager"],
)
def test_a_stop_signal_stops_every_child_and_frees_every_port(
    tmp_path: Path, signum: signal.Signals, to_group: bool
) -> None:
    stack = DevStack(tmp_path)
    try:
        procs, ports = _running(stack)
        if to_group:  # a terminal signals its foreground process group
            os.killpg(stack.proc.pid, signum)
        else:  # a process manager signals the process it started
            stack.proc.send_signal(signum)
        code = stack.proc.wait(STOP_TIMEOUT_S)
        out = stack.output()
        assert code == 0, out
        assert f"{signum.name}: stopping" in out
        assert "stopped; no process left behind" in out
        _assert_nothing_left(stack, procs, ports)
    finally:
        stack.close()


def test_make_dev_stops_everything_when_its_terminal_closes(tmp_path: Path) -> None:
    """SIGHUP to the foreground process group of ``make dev``: make and the launcher."""
    stack = DevStack(tmp_path, make=True)
    try:
        procs, ports = _running(stack)
        assert "launcher" in {role(p) for p in procs}
        os.killpg(stack.proc.pid, signal.SIGHUP)
        stack.proc.wait(STOP_TIMEOUT_S)  # make's own status reports the signal it got
        out = stack.output()
        assert "SIGHUP: stopping" in out
        assert "stopped; no process left behind" in out
        _assert_nothing_left(stack, procs, ports)
    finally:
        stack.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_launcher_killed_by_sigkill(tmp_path: Path) -> None:
    stack = DevStack(tmp_path)
    try:
        procs, ports = _running(stack)
        stack.proc.kill()  # cannot be caught: the kernel's parent-death signal does the work
        stack.proc.wait()
        _assert_nothing_left(stack, procs, ports)
    finally:
        stack.close()
