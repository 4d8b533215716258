"""Running ``make dev``'s launcher as a user does, on free ports, and looking at what it left.

The launcher is started in its own session, so a signal "from the terminal" (SIGINT, SIGHUP)
can be sent to its process group as a terminal would, and a signal from a process manager
(SIGTERM) to its pid alone.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the dev extra

from tests.fixtures.kafka_broker import free_port

ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT_S = 240.0  # JVM + whisper + group join on 2 shared cores
STOP_TIMEOUT_S = 90.0  # the launcher's own bound is 20 s per tier, then SIGKILL
GONE_TIMEOUT_S = 30.0  # a SIGKILLed launcher's children: the kernel kills them at once
POLL_S = 0.2  # polling an HTTP endpoint or a process table
BANNER = "MedVoice dev stack (ready in"  # what the launcher prints once it saw the stack ready


@dataclass(frozen=True)
class Ports:
    """Where one dev stack listens (free ports: never a developer's 8000/9092)."""

    api: int = field(default_factory=free_port)
    worker: int = field(default_factory=free_port)
    s3: int = field(default_factory=free_port)
    kafka: int = field(default_factory=free_port)

    def args(self) -> list[str]:
        """The launcher's command-line flags for these ports."""
        return [
            "--api-port",
            str(self.api),
            "--worker-port",
            str(self.worker),
            "--s3-port",
            str(self.s3),
            "--kafka-port",
            str(self.kafka),
        ]

    def all(self) -> set[int]:
        """Every port."""
        return {self.api, self.worker, self.s3, self.kafka}


def launcher_env() -> dict[str, str]:
    """This environment less any MEDVOICE_* of the developer's, plus fast test settings.

    Also less make's own variables: under ``make test`` they would make ``make dev`` a
    sub-make of it, which a user's ``make dev`` is not.
    """
    make_vars = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MEDVOICE_") and k not in make_vars
    }
    env["MEDVOICE_WHISPER__BEAM_SIZE"] = "1"  # greedy: the short test clip needs no beam
    env["MEDVOICE_WHISPER__CPU_THREADS"] = "2"
    return env


class DevStack:
    """One ``python -m tools.dev_stack`` (or ``make dev``) and its output."""

    def __init__(
        self,
        work_dir: Path,
        *,
        extra_args: tuple[str, ...] = (),
        extra_env: dict[str, str] | None = None,
        make: bool = False,
    ) -> None:
        """Start it on free ports with its state (logs, broker data) under ``work_dir``."""
        self.ports = Ports()
        self.state = work_dir / "state"
        self.out_path = work_dir / "launcher.out"
        args = [*self.ports.args(), "--state-dir", str(self.state), *extra_args]
        if make:
            # -o: the venv counts as up to date (a pytest run must not reinstall it)
            argv = ["make", "--no-print-directory", "-o", ".venv/.installed", "dev"]
            argv.append(f"DEV_ARGS={' '.join(args)}")
        else:
            argv = [sys.executable, "-m", "tools.dev_stack", *args]
        self._out: IO[bytes] = self.out_path.open("wb")
        self.noted: list[psutil.Process] = []  # every process seen under the launcher
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**launcher_env(), **(extra_env or {})},
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a shell's job: its own process group
        )

    @property
    def api(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def bootstrap(self) -> str:
        """The broker's bootstrap address."""
        return f"127.0.0.1:{self.ports.kafka}"

    def output(self) -> str:
        """What the launcher printed so far."""
        return self.out_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        """Poll the API's and the worker's /readyz until both answer 200, then the banner."""
        urls = [f"{self.api}/readyz", f"http://127.0.0.1:{self.ports.worker}/readyz"]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"launcher exited ({self.proc.returncode}):\n{self.output()}")
            if not urls:
                if BANNER in self.output():  # the launcher saw it ready too
                    return
            else:
                try:
                    if httpx.get(urls[0], timeout=2.0).status_code == 200:
                        urls.pop(0)
                        continue
                except httpx.TransportError:
                    pass
            time.sleep(POLL_S)  # polling a readiness endpoint, then the launcher's output
        waiting = urls[0] if urls else "the launcher's banner"
        raise AssertionError(f"{waiting} not ready in {READY_TIMEOUT_S} s:\n{self.output()}")

    def descendants(self) -> list[psutil.Process]:
        """Every process below the launcher (or below make's launcher), noted for ``close``."""
        procs = psutil.Process(self.proc.pid).children(recursive=True)
        self.noted.extend(procs)
        return list(procs)

    def close(self) -> None:
        """Stop it as a process manager would (SIGTERM), and make sure nothing runs on."""
        if self.proc.poll() is None:
            self.descendants()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for proc in self.noted:  # only after a failure: the launcher stops them itself
            if alive(proc):
                proc.kill()
        self._out.close()


def role(proc: psutil.Process) -> str:
    """Which part of the stack ``proc`` is, from its command line."""
    cmd = " ".join(proc.cmdline())
    for needle, name in (
        ("kafka.Kafka", "broker"),
        ("tansu", "broker"),
        ("moto.server", "s3"),
        ("-m processors", "worker"),
        ("-m producer_api", "api"),
        ("tools.dev_stack", "launcher"),
    ):
        if needle in cmd:
            return name
    return cmd


def listening_ports(procs: list[psutil.Process]) -> set[int]:
    """The TCP ports these processes listen on."""
    ports = set()
    for proc in procs:
        for conn in proc.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                ports.add(conn.laddr.port)
    return ports


def alive(proc: psutil.Process) -> bool:
    """Whether ``proc`` still runs (a zombie waiting for its reaper holds nothing: gone)."""
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def port_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` now (what a restarted stack does)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
        return True


def wait_gone(procs: list[psutil.Process], timeout_s: float = GONE_TIMEOUT_S) -> list[str]:
    """Wait until none of ``procs`` runs; returns the roles still running at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(p) for p in procs):
        time.sleep(POLL_S)  # polling the process table
    return [f"{role(p)} (pid {p.pid})" for p in procs if alive(p)]


def wait_ports_free(ports: set[int], timeout_s: float = GONE_TIMEOUT_S) -> list[int]:
    """Wait until every port is free; returns those still taken at the deadline.

    A killed multi-threaded process (the JVM) shows as a zombie while its other threads are
    still exiting, and its sockets close with the last thread: so this waits too.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(port_free(p) for p in ports):
        time.sleep(POLL_S)  # polling the ports
    return sorted(p for p in ports if not port_free(p))
