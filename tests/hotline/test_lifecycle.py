"""How long-running processes settle their heap once started (``settle_heap``)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from hotline.app.lifecycle import YOUNG_COLLECTION_THRESHOLD, settle_heap


class Node:
    def __init__(self) -> None:
        self.peer: Node | None = None


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was: a frozen heap would outlive the test."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_young_ones_collected_less_often(
    collector: None,
) -> None:
    start_up = [Node() for _ in range(1000)]
    frozen_before = gc.get_freeze_count()
    middle_and_oldest = gc.get_threshold()[1:]
    settle_heap()
    assert gc.get_freeze_count() >= frozen_before + len(start_up)
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *middle_and_oldest)


def test_garbage_made_before_settling_is_collected_not_frozen_for_good(collector: None) -> None:
    cycle = Node()
    cycle.peer = cycle  # only the cycle collector can free it
    gone = weakref.ref(cycle)
    del cycle
    settle_heap()
    assert gone() is None
