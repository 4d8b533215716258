"""Freezing the start-up heap: later garbage is still collected, start-up objects are skipped."""

import gc
from collections.abc import Iterator

import pytest

from medvoice_common.heap import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_startup_objects_are_frozen_and_new_cycles_still_collected() -> None:
    built_at_startup = [Node() for _ in range(100)]
    frozen = freeze_startup_heap()
    assert frozen >= 100 and gc.get_freeze_count() == frozen
    in_generations = {id(o) for o in gc.get_objects()}  # frozen objects are not listed
    assert not in_generations & {id(n) for n in built_at_startup}

    collected: list[int] = []
    later = Node()
    later_id = id(later)
    gc.callbacks.append(lambda phase, info: collected.append(info["collected"]))
    try:
        del later
        gc.collect()
    finally:
        gc.callbacks.pop()
    assert later_id not in {id(o) for o in gc.get_objects()}
    assert sum(collected) >= 1  # the cycle made after the freeze was found and freed
