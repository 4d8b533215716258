"""The worker's Kafka fetch wait, set through Faust's private consumer factory: checked on
the real Faust consumer and the real aiokafka consumer it builds (nothing connects)."""

from typing import Any

import faust
import pytest

from processors.faust_config import IncompatibleConsumer, install_fetch_wait


def real_app() -> Any:
    return faust.App(f"fetch-{id(object())}", broker="kafka://127.0.0.1:1", autodiscover=False)


async def test_the_real_consumer_is_built_with_the_configured_fetch_wait() -> None:
    app = real_app()
    thread = app.consumer._thread
    faust_default = thread._create_worker_consumer(app.transport)
    assert faust_default._fetch_max_wait_ms == 1500, "Faust's hard-coded wait changed"
    install_fetch_wait(app.consumer, 100)
    tuned = thread._create_worker_consumer(app.transport)
    assert tuned._fetch_max_wait_ms == 100


def test_install_fails_at_start_up_when_faust_builds_its_consumer_differently() -> None:
    app = real_app()
    consumer = app.consumer
    consumer._thread = object()  # a Faust release without the private factory
    with pytest.raises(IncompatibleConsumer, match="_create_worker_consumer"):
        install_fetch_wait(consumer, 100)


async def test_a_consumer_without_aiokafkas_attribute_fails_loudly() -> None:
    app = real_app()
    thread = app.consumer._thread
    thread._create_worker_consumer = lambda transport: object()
    install_fetch_wait(app.consumer, 100)
    with pytest.raises(IncompatibleConsumer, match="_fetch_max_wait_ms"):
        thread._create_worker_consumer(app.transport)
