"""Freezing the start-up heap: later garbage is still collected, start-up objects are skipped."""

import gc
from collections.abc import Callable, Iterator

import pytest

from medvoice_common.heap import YOUNG_THRESHOLD, freeze_startup_heap, space_young_collections


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def _young_collections_while(work: Callable[[], object]) -> int:
    started: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            started.append(1)

    gc.collect()  # an empty young generation to start from
    gc.callbacks.append(count)
    try:
        work()
    finally:
        gc.callbacks.remove(count)
    return len(started)


def test_young_collections_are_spaced_out() -> None:
    def allocate() -> object:
        return [Node() for _ in range(YOUNG_THRESHOLD // 2)]  # each Node: two containers

    gc.set_threshold(700, 10, 10)  # CPython's default (3.11-3.12)
    assert _young_collections_while(allocate) >= 5
    assert space_young_collections()[0] == YOUNG_THRESHOLD
    assert _young_collections_while(allocate) <= 1


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
