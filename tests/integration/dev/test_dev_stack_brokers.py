"""Which broker ``make dev`` runs: the embedded fallback says so loudly; a given one is used."""

import signal
import socket
from pathlib import Path

import pytest

from tests.integration.dev.launcher import (
    STOP_TIMEOUT_S,
    DevStack,
    role,
    wait_gone,
)
from tools.kafka_broker import KafkaBroker

pytestmark = pytest.mark.integration


def test_without_a_jvm_the_embedded_broker_stands_in_and_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "bin"  # a PATH without java, as on a machine with no JVM installed
    empty.mkdir()
    stack = DevStack(tmp_path, extra_env={"PATH": str(empty)})
    try:
        stack.wait_ready()  # the API and worker work against it (no idempotent producer)
        out = stack.output()
        assert "FALLBACK BROKER" in out
        assert "no JVM" in out
        assert "no idempotent producer" in out
        procs = stack.descendants()
        broker = [p for p in procs if role(p) == "broker"]
        assert broker, [p.cmdline() for p in procs]
        assert "tansu" in " ".join(broker[0].cmdline())
        stack.proc.send_signal(signal.SIGTERM)
        assert stack.proc.wait(STOP_TIMEOUT_S) == 0
        assert wait_gone(procs) == []
    finally:
        stack.close()


def test_a_given_bootstrap_is_used_and_no_broker_is_started(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    stack = DevStack(
        tmp_path,
        extra_env={
            "MEDVOICE_KAFKA__BOOTSTRAP": kafka_broker.bootstrap,
            "MEDVOICE_KAFKA__TOPIC_PREFIX": f"dev{tmp_path.name[-8:]}.",  # the shared test broker
        },
    )
    try:
        stack.wait_ready()
        parts = {role(p) for p in stack.descendants()}
        assert {"s3", "worker", "api"} <= parts
        assert "broker" not in parts
        out = stack.output()
        assert f"{kafka_broker.bootstrap}   (yours)" in out
        assert "FALLBACK" not in out
    finally:
        stack.close()


def test_a_taken_port_is_named_and_nothing_is_started(tmp_path: Path) -> None:
    """A second make dev on the same ports says which port and flag, instead of half-starting."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = DevStack(tmp_path, extra_args=("--kafka-port", str(port)))  # the last flag wins
        try:
            assert stack.proc.wait(STOP_TIMEOUT_S) == 1
            out = stack.output()
            assert f"port {port} is taken" in out
            assert "--kafka-port" in out
            assert "start " not in out  # nothing was started
        finally:
            stack.close()
