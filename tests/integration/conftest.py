"""Session-wide real services: one Apache Kafka broker and one S3-compatible endpoint."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.kafka_broker import KafkaBroker, free_port
from tests.fixtures.processes import ManagedProcess, start_s3_server
from tests.fixtures.stack import StackConfig


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A KRaft Apache Kafka broker on a free port (a missing broker fails, never skips)."""
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server over HTTP on a free port."""
    port = free_port()
    proc: ManagedProcess = start_s3_server(port, tmp_path_factory.mktemp("s3"))
    yield f"http://127.0.0.1:{port}"
    proc.terminate()


@pytest.fixture
def stack_config(kafka_broker: KafkaBroker, s3_endpoint: str, tmp_path: Path) -> StackConfig:
    """A fresh isolated deployment (topics, group, bucket) for one test."""
    return StackConfig(kafka_broker.bootstrap, s3_endpoint, tmp_path)
