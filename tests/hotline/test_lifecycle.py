"""How long-running processes settle their heap once started (``settle_heap``) and stop on
SIGTERM."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

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


# A process whose first component receives SIGTERM while it starts: systemd stopping a unit
# that was just started, or a test stopping a scheduler as soon as it worked.
SIGTERM_DURING_START = """
import os, signal, sys, threading
from hotline.app.components import run_until_signal
from casebook.db import Database
from casebook.settings import DatabaseSettings

class Component:
    def __init__(self, name):
        self.name = name
    def start(self):
        if self.name == "first":
            os.kill(os.getpid(), signal.SIGTERM)
    def stop(self):
        print("stopped", self.name, flush=True)
    def state(self):
        return {}

db = Database(DatabaseSettings(url="sqlite:///" + sys.argv[1]), create=True)
run_until_signal(db, [Component("first"), Component("second")], threading.Event())
print("clean exit", flush=True)
"""


def test_a_sigterm_while_components_start_stops_them_cleanly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SIGTERM_DURING_START, str(tmp_path / "hotline.db")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["stopped second", "stopped first", "clean exit"]


# A signal that comes while the main thread holds the lock inside the stop event (Event.wait
# holds it between its checks): the handler must not take that lock. Run in a process of its own
# so that a handler that does hangs that process, not the suite.
SIGNAL_WHILE_LOCKED = """
import os, signal, threading
from hotline.app.lifecycle import stop_on_signals, wait_for_stop
stop = threading.Event()
with stop_on_signals() as received:
    with stop._cond:  # what Event.wait holds between its checks
        os.kill(os.getpid(), signal.SIGTERM)  # its handler runs here, the lock held
        for _ in range(1000):
            pass
    print(wait_for_stop(stop, received), stop.is_set())
"""


def test_a_signal_while_the_stop_event_is_locked_still_stops() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_WHILE_LOCKED],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "SIGTERM True\n"), done.stderr
