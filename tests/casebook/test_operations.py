"""Component heartbeats: a component is healthy while it keeps reporting (casebook.operations
owns the staleness rule that `hotline status` shows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from casebook import operations
from casebook.db import Database

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_three_missed_heartbeats_mark_a_component_silent(db: Database) -> None:
    beat = timedelta(seconds=operations.HEARTBEAT_SECONDS)
    db.run(lambda s: operations.beat(s, "listener", "a:1", {"live_calls": 2}, NOW - 2 * beat))
    db.run(lambda s: operations.beat(s, "worker", "a:2", {}, NOW - 4 * beat))
    db.run(lambda s: operations.beat(s, "agi", "a:3", {}, NOW, stopped=True))
    status = db.run(lambda s: operations.site_status(s, NOW))
    health = {c.component: c.healthy for c in status.components}
    assert health == {"listener": True, "worker": False, "agi": False}
    assert status.live_calls == 2
