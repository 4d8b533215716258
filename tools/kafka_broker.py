"""A real Apache Kafka broker (KRaft, single node) run from the Maven-fetched jars.

One implementation for the integration tests (``tests/fixtures/kafka_broker.py``), the
benchmarks and ``make dev``. ``mvn -f tests/kafka/pom.xml dependency:copy-dependencies``
(done by ``make kafka-jars``) puts the classpath in ``tests/kafka/target/lib``. The broker
listens on the ports it is given (free ones by default) and keeps its data in a directory
that survives ``stop()``/``start()`` (the restart tests).
"""

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
LIB_DIR = ROOT / "tests" / "kafka" / "target" / "lib"
STARTED_LINE = "Kafka Server started"
START_TIMEOUT_S = 90.0  # a cold JVM on 2 busy cores starts in 5-20 s
STOP_TIMEOUT_S = 30.0
FORMAT_TIMEOUT_S = 120.0

LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
"""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jars_present() -> bool:
    """Whether ``make kafka-jars`` has put the broker's classpath in place."""
    return any(LIB_DIR.glob("kafka_2.13-*.jar"))


def java_present() -> bool:
    """Whether a JVM is on PATH."""
    return shutil.which("java") is not None


# Starts one JVM (argv) writing to a log, with exactly the environment given, and returns at
# once; the last argument says whether it is the broker (True) or a step that exits by itself.
Spawn = Callable[[list[str], IO[bytes], Mapping[str, str], bool], "subprocess.Popen[bytes]"]


def plain_spawn(
    argv: list[str], log: IO[bytes], env: Mapping[str, str], service: bool
) -> "subprocess.Popen[bytes]":
    """A child of this process, in its process group (what the tests use)."""
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(env))


class KafkaBroker:
    """One KRaft broker+controller process."""

    def __init__(
        self,
        work_dir: Path,
        *,
        port: int = 0,
        controller_port: int = 0,
        spawn: Spawn = plain_spawn,
    ) -> None:
        """Prepare config and data dir under ``work_dir`` (formatted once).

        ``port``/``controller_port`` 0: a free port each. ``spawn`` starts the JVMs (the
        storage format and the broker); ``make dev`` gives one that ties them to its life.
        """
        if not jars_present():
            raise RuntimeError(f"Kafka jars missing in {LIB_DIR}: run `make kafka-jars`")
        self.dir = work_dir
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = work_dir / "broker.log"
        self._spawn = spawn
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._write_config()
        self._format()

    @property
    def version(self) -> str:
        """The Kafka version of the jars."""
        jar = next(LIB_DIR.glob("kafka_2.13-*.jar"))
        return jar.stem.removeprefix("kafka_2.13-")

    @property
    def process(self) -> "subprocess.Popen[bytes] | None":
        """The running broker's process (None before ``start()`` and after ``stop()``)."""
        return self._proc

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java",
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseSerialGC",  # 2 cores: the parallel collectors only add contention
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.yaml'}",
            "-cp",
            f"{LIB_DIR}/*",
            main,
            *args,
        ]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KAFKA_HEAP_OPTS": ""}

    def _write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "log4j2.yaml").write_text(LOG4J2)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",  # fewer than 50: faster group start-up
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "group.initial.rebalance.delay.ms": "0",  # tests start consumers at once
            "group.consumer.min.session.timeout.ms": "1000",
            "group.classic.min.session.timeout.ms": "1000",
            "auto.create.topics.enable": "true",
        }
        text = "\n".join(f"{k}={v}" for k, v in props.items()) + "\n"
        (self.dir / "server.properties").write_text(text)

    def _format(self) -> None:
        cluster_id = uuid.uuid4().hex[:22]
        argv = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(self.dir / "server.properties"),
        )
        log_path = self.dir / "format.log"
        with log_path.open("wb") as log:
            proc = self._spawn(argv, log, self._env(), False)
            try:
                code = proc.wait(FORMAT_TIMEOUT_S)
            except BaseException:  # a timeout, or make dev told to stop: no JVM left behind
                proc.kill()
                proc.wait()
                raise
        if code != 0:
            raise RuntimeError(
                f"Kafka storage format exited with {code}:\n{log_path.read_text(errors='replace')}"
            )

    def start(self) -> None:
        """Start the broker and wait for its "started" log line."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = self.log_path.open("ab")
        self._proc = self._spawn(
            self._java("kafka.Kafka", str(self.dir / "server.properties")),
            self._log,
            self._env(),
            True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"Kafka exited with {self._proc.returncode}; see {self.log_path}"
                )
            with self.log_path.open("rb") as fh:
                fh.seek(offset)
                if STARTED_LINE.encode() in fh.read():
                    return
            time.sleep(0.1)  # polling the broker's log for its start line
        raise RuntimeError(f"Kafka did not start in {START_TIMEOUT_S} s; see {self.log_path}")

    def stop(self) -> None:
        """Stop the broker cleanly (SIGTERM), keeping its data."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
