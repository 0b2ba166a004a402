"""Real Asterisk 22 traffic, one capture per scenario (tests/fixtures/ami/<scenario>/, made by
tests/pbx/capture.py), replayed through the real AMI parser, the call tracker, the store
(SQLite) and the callback dialler's watch: the whole ordered sequence each reported must be
expected.json's. When a change alters it on purpose, `python -m tests.pbx.capture --expected`
rewrites expected.json; review that diff as the change's effect on real traffic.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hotline.ami_protocol import AmiFramer, ParseStats, iter_messages
from tests.hotline.corpus import (
    Scenario,
    replay_dial,
    replay_settings,
    replay_store,
    replay_tracker,
    scenarios,
)

# What the real-PBX suite captures (tests/pbx/traffic.py).
CAPTURED = {
    "new-complaint",
    "status-owner",
    "status-owner-hash",
    "status-stranger",
    "status-stranger-hash",
    "agent",
    "abandoned",
    "concurrent-10",
    "callback-answered",
    "callback-busy",
    "callback-unanswered",
    "callback-agent-busy",
    "callbacks-at-once",
    "core-restart",
    "listener-sigkill",
}


@pytest.fixture(params=scenarios())
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return Scenario.load(request.param)


def test_the_corpus_holds_every_captured_scenario() -> None:
    assert set(scenarios()) == CAPTURED


def test_every_captured_byte_parses(scenario: Scenario) -> None:
    for raw in scenario.segments:
        stats = ParseStats()
        messages = list(iter_messages(raw, expect_banner=True, stats=stats))
        assert stats.warnings == 0
        blocks = raw.split(b"\r\n", 1)[1].split(b"\r\n\r\n")
        assert len(messages) == len(blocks) - 1  # every block but the empty rest after the last


def test_cut_at_random_boundaries_the_stream_parses_the_same(scenario: Scenario) -> None:
    rng = random.Random(scenario.name)
    for raw in scenario.segments:
        whole = [m.headers for m in iter_messages(raw, expect_banner=True, stats=ParseStats())]
        framer = AmiFramer(expect_banner=True)
        pieces, position = [], 0
        while position < len(raw):
            size = rng.randint(1, 700)
            pieces += [m.headers for m in framer.feed(raw[position : position + size])]
            position += size
        assert pieces == whole


def test_the_tracker_reports_the_whole_ordered_sequence(scenario: Scenario, tmp_path: Path) -> None:
    assert replay_tracker(scenario, replay_settings(tmp_path)) == scenario.expected()["tracker"]


def test_the_store_writes_the_expected_rows_each_call_once(
    scenario: Scenario, tmp_path: Path
) -> None:
    stored = replay_store(scenario, replay_settings(tmp_path))
    assert stored == scenario.expected()["store"]
    # A callback's dial is no hotline call: the listener stores none for it.
    callers = sorted(scenario.meta["callers"] or [])
    assert sorted(row["caller_number"] for row in stored["calls"]) == callers
    assert all(row["ended"] is not None for row in stored["calls"])


def test_a_restarted_listener_told_it_all_again_stores_nothing_twice(
    scenario: Scenario, tmp_path: Path
) -> None:
    again = replay_store(scenario, replay_settings(tmp_path), listeners=2)
    assert again == scenario.expected()["store"]


def test_the_dialler_reads_its_callbacks_result(scenario: Scenario) -> None:
    assert replay_dial(scenario) == scenario.expected()["dial"]
