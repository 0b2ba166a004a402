"""Property: whatever the agents and callbacks, assignment never exceeds an agent's capacity,
never gives one callback to two agents, and only gives callbacks to agents who can take them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import Session, select

from casebook import callbacks
from casebook.access import Actor
from casebook.db import Database
from casebook.models import Agent, Callback, CallbackReason, CallbackStatus
from casebook.settings import DatabaseSettings
from hotline.app.config import Settings

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # Sunday 10:00 in Tripoli
DEPARTMENTS = ["customer-care", "billing", None]
agents_strategy = st.lists(
    st.tuples(
        st.sampled_from(["customer-care", "billing", "technical"]),
        st.sampled_from([["ar"], ["en"], ["ar", "en"]]),
        st.integers(min_value=1, max_value=4),  # capacity
        st.integers(min_value=0, max_value=3),  # already held
    ),
    min_size=1,
    max_size=6,
)
callbacks_strategy = st.lists(
    st.tuples(st.sampled_from(DEPARTMENTS), st.sampled_from(["ar", "en"])), min_size=1, max_size=25
)


def _callback(department: str | None, language: str, status: str, agent: int | None) -> Callback:
    return Callback(
        phone_number="0910000001",
        reason=CallbackReason.FOLLOW_UP.value,
        department=department,
        language=language,
        due_from=NOW - timedelta(minutes=5),
        overdue_at=NOW + timedelta(days=1),
        status=status,
        assigned_agent_id=agent,
    )


def test_assignment_respects_capacity_and_assigns_each_callback_once(tmp_path: Path) -> None:
    settings = Settings()
    db = Database(DatabaseSettings(url=f"sqlite:///{tmp_path / 'p.db'}"), create=True)

    @hypothesis_settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(agents_strategy, callbacks_strategy)
    def check(
        staff: list[tuple[str, list[str], int, int]], due: list[tuple[str | None, str]]
    ) -> None:
        def setup(s: Session) -> None:
            s.exec(delete(Callback))
            s.exec(delete(Agent))
            for n, (department, languages, capacity, held) in enumerate(staff):
                agent = Agent(
                    username=f"a{n}",
                    display_name="x",
                    roles=["agent"],
                    department=department,
                    languages=languages,
                    capacity=capacity,
                )
                s.add(agent)
                s.flush()
                for _ in range(held):
                    s.add(_callback(department, "ar", CallbackStatus.ASSIGNED.value, agent.id))
            for wanted, language in due:
                s.add(_callback(wanted, language, CallbackStatus.PENDING.value, None))

        db.run(setup)
        scheduler = Actor.system("scheduler")
        first = db.run(lambda s: callbacks.assign_due_callbacks(s, settings, scheduler, NOW))
        second = db.run(lambda s: callbacks.assign_due_callbacks(s, settings, scheduler, NOW))
        assigned_ids = [cid for cid, _ in first.assigned + second.assigned]
        assert len(assigned_ids) == len(set(assigned_ids))
        with db.session() as s:
            by_id = {a.id: a for a in s.exec(select(Agent))}
            held = s.exec(
                select(Callback).where(Callback.status == CallbackStatus.ASSIGNED.value)
            ).all()
            loads = Counter(c.assigned_agent_id for c in held)
            for agent_id, load in loads.items():
                agent = by_id[agent_id]
                pre_held = staff[int(agent.username[1:])][3]
                assert load <= max(agent.capacity or 0, pre_held)
            for callback in held:
                if callback.id in assigned_ids:
                    assert callbacks.can_handle(by_id[callback.assigned_agent_id], callback)

    check()
    db.dispose()
