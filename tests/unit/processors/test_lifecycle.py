"""A stop that hangs ends in a hard exit once the grace period is spent."""

import subprocess
import sys
import textwrap

from processors.lifecycle import HARD_EXIT_CODE, HardExit, Liveness

HANGS = textwrap.dedent(
    """
    import threading
    from processors.lifecycle import HardExit
    HardExit(0.3).arm("test")
    threading.Event().wait()  # a graceful stop that never finishes
    """
)


def test_a_hanging_stop_exits_hard_after_the_grace_period() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", HANGS], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == HARD_EXIT_CODE, proc.stderr.decode()


def test_arming_twice_keeps_the_first_deadline() -> None:
    exit_ = HardExit(3600)
    exit_.arm("first")
    timer = exit_._timer
    exit_.arm("second")
    assert exit_._timer is timer
    assert timer is not None
    timer.cancel()


def test_liveness_keeps_the_first_problem() -> None:
    live = Liveness()
    assert live.ok
    live.fail("stuck")
    live.fail("other")
    assert not live.ok and live.problem == "stuck"
