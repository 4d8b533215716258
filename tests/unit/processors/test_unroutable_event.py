"""An event the worker can neither finish nor reroute stops the worker instead of being skipped.

The real-broker behaviour around it (nothing committed past an unfinished task, redelivery
after a restart) is covered by the SIGKILL and SIGTERM tests; this checks the decision.
"""

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from faust.types import TP

from processors.agents import TaskProcessor
from schemas.topics import Topics


class FakeMessage:
    def __init__(self) -> None:
        self.refs = 0
        self.headers: list[tuple[str, bytes]] = []
        self.key = b"k"
        self.tp = TP("t.audio.submitted", 0)
        self.offset = 7

    def incref(self) -> None:
        self.refs += 1


async def test_unroutable_event_is_held_unacked_and_the_worker_is_stopped() -> None:
    stopped = asyncio.Event()
    ctx = SimpleNamespace(backend=SimpleNamespace(name="unit"), settings=None)
    processor = TaskProcessor(cast(Any, ctx), {}, {}, Topics.with_prefix(), stop_worker=stopped.set)

    async def fails(*_: object) -> None:
        raise RuntimeError("boom")

    processor._handle = fails  # type: ignore[method-assign]
    processor._retry_or_dead_letter = fails  # type: ignore[method-assign]
    message = FakeMessage()
    event = SimpleNamespace(message=message, value=b"{}")

    handling = asyncio.create_task(processor._guarded(cast(Any, event)))
    await asyncio.wait_for(stopped.wait(), 5)
    await asyncio.sleep(0)
    assert message.refs == 1, "held: the stream's ack cannot mark it done"
    assert not handling.done(), "the agent must not go on to the next event"

    handling.cancel()  # what the worker's shutdown does
    with pytest.raises(asyncio.CancelledError):
        await handling
    assert message.refs >= 1
