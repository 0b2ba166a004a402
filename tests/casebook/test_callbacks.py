"""The callback policy with a controllable clock: shifts, time zone, call windows, owner
preference, skills, load, capacity, retries, written follow-ups and overdue escalation."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from casebook import agents, callbacks
from casebook.access import Actor
from casebook.db import Database
from casebook.errors import AccessDenied, RuleViolation
from casebook.models import (
    Agent,
    AttemptResult,
    AuditEvent,
    Callback,
    CallbackReason,
    CallbackStatus,
)
from casebook.settings import DatabaseSettings
from hotline.app.config import Settings
from tests import conftest

TRIPOLI = ZoneInfo("Africa/Tripoli")
SCHEDULER = Actor.system("scheduler")


def local(text: str) -> datetime:
    """A moment given in Tripoli time (UTC+2), as the clock would give it: UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=TRIPOLI).astimezone(UTC)


SUNDAY_10 = local("2026-11-22T10:00")  # a working Sunday morning


def add_agent(
    db: Database,
    settings: Settings,
    username: str,
    department: str = "customer-care",
    **extra: Any,
) -> None:
    conftest.add_agent(db, settings, username, ["agent"], department=department, **extra)


@pytest.fixture
def site(db: Database, settings: Settings) -> Database:
    conftest.bootstrap(db, settings, "admin", ["admin", "supervisor"])
    return db


def request(
    db: Database,
    settings: Settings,
    *,
    due: datetime = SUNDAY_10,
    department: str | None = "customer-care",
    skill: str | None = None,
    owner: str | None = None,
    language: str = "ar",
    window: tuple[time, time] | None = None,
) -> int:
    def work(s: Session) -> int:
        owner_id = None
        if owner is not None:
            owner_id = s.exec(select(Agent).where(Agent.username == owner)).one().id
        callback = Callback(
            phone_number="0910000001",
            reason=CallbackReason.FOLLOW_UP.value,
            department=department,
            skill=skill,
            language=language,
            due_from=due,
            overdue_at=due + timedelta(hours=settings.callbacks.overdue_hours),
            owner_agent_id=owner_id,
            window_start=window[0] if window else None,
            window_end=window[1] if window else None,
        )
        s.add(callback)
        s.flush()
        return callback.id or 0

    return db.run(work)


def assign(db: Database, settings: Settings, now: datetime) -> dict[int, str]:
    run = db.run(lambda s: callbacks.assign_due_callbacks(s, settings, SCHEDULER, now))
    return dict(run.assigned)


def test_only_agents_on_shift_get_callbacks_at_the_shift_edges(
    site: Database, settings: Settings
) -> None:
    add_agent(site, settings, "early", shift_days=["sun"], shift_start=time(8), shift_end=time(12))
    one = request(site, settings)
    assert assign(site, settings, local("2026-11-22T11:59")) == {one: "early"}
    two = request(site, settings)
    assert assign(site, settings, local("2026-11-22T12:00")) == {}  # the shift ended at 12:00
    assert assign(site, settings, local("2026-11-23T11:00")) == {}  # not a Monday worker
    assert assign(site, settings, local("2026-11-29T09:00")) == {two: "early"}


def test_business_hours_apply_in_the_sites_time_zone_and_holidays_are_off(
    site: Database, settings: Settings
) -> None:
    add_agent(site, settings, "amal")  # no shift of her own: business hours, 08:00-16:00 Tripoli
    first = request(site, settings, due=local("2026-11-22T06:00"))
    # 07:30 UTC is 09:30 in Tripoli: open (and inside the 09:00-20:00 call window).
    assert assign(site, settings, datetime(2026, 11, 22, 7, 30, tzinfo=UTC)) == {first: "amal"}
    settings.business_hours.holidays = ["2026-11-23"]
    request(site, settings, due=local("2026-11-23T06:00"))
    assert assign(site, settings, local("2026-11-23T10:00")) == {}
    assert assign(site, settings, local("2026-11-27T10:00")) == {}  # Friday: weekend


def test_customers_are_called_only_inside_their_window(site: Database, settings: Settings) -> None:
    add_agent(site, settings, "amal")
    early = local("2026-11-22T08:00")
    site_window = request(site, settings, due=early)
    own_window = request(site, settings, due=early, window=(time(13), time(14)))
    assert assign(site, settings, local("2026-11-22T08:30")) == {}  # agents work, customers sleep
    assert assign(site, settings, local("2026-11-22T09:00")) == {site_window: "amal"}
    assert assign(site, settings, local("2026-11-22T13:30")) == {own_window: "amal"}


def test_the_owner_comes_first_then_anyone_after_the_delay(
    site: Database, settings: Settings
) -> None:
    settings.callbacks.owner_preference_minutes = 60
    add_agent(site, settings, "owner", shift_days=["sun"], shift_start=time(12), shift_end=time(16))
    add_agent(site, settings, "other")
    busy = request(site, settings, owner="owner")
    assert assign(site, settings, local("2026-11-22T10:30")) == {}  # owner off shift: wait
    assert assign(site, settings, local("2026-11-22T11:00")) == {busy: "other"}  # delay over
    mine = request(site, settings, due=local("2026-11-22T12:00"), owner="owner")
    request(site, settings, due=local("2026-11-22T12:00"))
    # The owner gets theirs although "other" is no busier (1 each after this run).
    assert assign(site, settings, local("2026-11-22T12:00"))[mine] == "owner"


def test_language_department_and_skill_decide_who_can_take_it(
    site: Database, settings: Settings
) -> None:
    add_agent(site, settings, "biller", department="billing")
    add_agent(site, settings, "tech", department="technical", skills=["billing"])
    add_agent(site, settings, "english", department="billing", languages=["en"])
    billing = request(site, settings, department="billing", skill="billing")
    english = request(site, settings, department="billing", language="en")
    network = request(site, settings, department="technical", skill="network")
    nobody = request(site, settings, department="sales")
    result = assign(site, settings, SUNDAY_10)
    assert result[billing] in {"biller", "tech"}
    assert result[english] == "english"
    assert result[network] == "tech"
    assert nobody not in result


def test_least_loaded_first_with_a_fair_tie_break(site: Database, settings: Settings) -> None:
    for name in ("a", "b", "c"):
        add_agent(site, settings, name)
    for _ in range(7):
        request(site, settings)
    loads = list(assign(site, settings, SUNDAY_10).values())
    assert sorted(loads.count(name) for name in "abc") == [2, 2, 3]
    # The next one goes to an agent holding 2 who waited longest for one.
    extra = request(site, settings)
    assert assign(site, settings, SUNDAY_10 + timedelta(minutes=1))[extra] in {
        name for name in "abc" if loads.count(name) == 2
    }


def test_capacity_is_never_exceeded(site: Database, settings: Settings) -> None:
    settings.callbacks.agent_capacity = 2
    add_agent(site, settings, "a")
    add_agent(site, settings, "b", capacity=1)
    for _ in range(5):
        request(site, settings)
    result = assign(site, settings, SUNDAY_10)
    assert sorted(result.values()) == ["a", "a", "b"]
    assert assign(site, settings, SUNDAY_10 + timedelta(minutes=5)) == {}
    ids = site.run(lambda s: {a.username: a.id for a in s.exec(select(Agent))})
    # What the next run counts (and bench/assign.py times): held callbacks per agent.
    assert site.run(callbacks.agent_loads) == {ids["a"]: 2, ids["b"]: 1}


def dial(db: Database, settings: Settings, callback_id: int, agent: str, action: str) -> None:
    actor = db.run(lambda s: agents.resolve_actor(s, agent, settings.roles))
    db.run(lambda s: callbacks.start_attempt(s, actor, callback_id, action, SUNDAY_10))


def result(
    db: Database, settings: Settings, action: str, outcome: AttemptResult, now: datetime
) -> Callback:
    return db.run(
        lambda s: callbacks.record_attempt_result(s, settings, SCHEDULER, action, outcome, now)
    )


def test_no_answer_retries_then_asks_for_a_written_followup(
    site: Database, settings: Settings
) -> None:
    settings.callbacks.max_attempts = 2
    settings.callbacks.retry_delay_minutes = 30
    add_agent(site, settings, "amal")
    callback_id = request(site, settings)
    assert assign(site, settings, SUNDAY_10) == {callback_id: "amal"}
    dial(site, settings, callback_id, "amal", "act-1")
    first = result(site, settings, "act-1", AttemptResult.NO_ANSWER, SUNDAY_10)
    assert (first.status, first.attempts) == (CallbackStatus.PENDING, 1)
    assert first.due_from == SUNDAY_10 + timedelta(minutes=30)
    assert assign(site, settings, SUNDAY_10 + timedelta(minutes=29)) == {}
    assert assign(site, settings, SUNDAY_10 + timedelta(minutes=30)) == {callback_id: "amal"}
    dial(site, settings, callback_id, "amal", "act-2")
    last = result(site, settings, "act-2", AttemptResult.BUSY, SUNDAY_10 + timedelta(minutes=31))
    assert (last.status, last.attempts) == (CallbackStatus.WRITTEN, 2)
    # A late duplicate report of the same attempt changes nothing.
    again = result(
        site, settings, "act-2", AttemptResult.ANSWERED, SUNDAY_10 + timedelta(minutes=32)
    )
    assert again.status == CallbackStatus.WRITTEN
    supervisor = site.run(lambda s: agents.resolve_actor(s, "admin", settings.roles))
    written = site.run(lambda s: callbacks.list_callbacks(s, supervisor, mine=False).items)
    assert [c.status for c in written] == [CallbackStatus.WRITTEN]


def test_an_answered_callback_is_done(site: Database, settings: Settings) -> None:
    add_agent(site, settings, "amal")
    callback_id = request(site, settings)
    assign(site, settings, SUNDAY_10)
    dial(site, settings, callback_id, "amal", "act-1")
    assert (
        result(site, settings, "act-1", AttemptResult.ANSWERED, SUNDAY_10).status
        == CallbackStatus.DONE
    )


def test_only_the_assigned_agent_dials_and_only_an_assigned_callback(
    site: Database, settings: Settings
) -> None:
    add_agent(site, settings, "amal")
    add_agent(site, settings, "omar", department="billing")
    callback_id = request(site, settings)
    with pytest.raises(AccessDenied):
        dial(site, settings, callback_id, "omar", "x-1")
    with pytest.raises(RuleViolation, match="only an assigned one is dialled"):
        dial(site, settings, callback_id, "admin", "x-2")


def test_overdue_callbacks_escalate_once(site: Database, settings: Settings) -> None:
    settings.callbacks.overdue_hours = 2
    request(site, settings)  # nobody on shift can take it
    assert (
        site.run(
            lambda s: callbacks.assign_due_callbacks(s, settings, SCHEDULER, SUNDAY_10)
        ).escalated
        == []
    )
    late = SUNDAY_10 + timedelta(hours=3)
    first = site.run(lambda s: callbacks.assign_due_callbacks(s, settings, SCHEDULER, late))
    again = site.run(lambda s: callbacks.assign_due_callbacks(s, settings, SCHEDULER, late))
    assert len(first.escalated) == 1 and again.escalated == []
    with site.session() as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "callback.overdue")).all()
    assert len(events) == 1


def test_reminders_count_due_and_overdue_callbacks(site: Database, settings: Settings) -> None:
    settings.callbacks.overdue_hours = 1
    add_agent(site, settings, "amal")
    request(site, settings)
    request(site, settings, due=SUNDAY_10 - timedelta(hours=2))
    assign(site, settings, SUNDAY_10)
    amal = site.run(lambda s: agents.resolve_actor(s, "amal", settings.roles))
    counts = site.run(lambda s: callbacks.reminders(s, amal, SUNDAY_10))
    assert (counts.due, counts.overdue) == (2, 1)
    upcoming = site.run(lambda s: callbacks.next_callback(s, settings, amal, SUNDAY_10)).callback
    assert upcoming is not None and upcoming.due_from == SUNDAY_10 - timedelta(hours=2)


def test_every_assignment_is_audited(site: Database, settings: Settings) -> None:
    add_agent(site, settings, "amal")
    callback_id = request(site, settings)
    assign(site, settings, SUNDAY_10)
    with site.session() as s:
        events = s.exec(select(AuditEvent).where(col(AuditEvent.action) == "callback.assign")).all()
    assert [(e.object_id, e.detail) for e in events] == [(str(callback_id), {"agent": "amal"})]


def _schedule(url: str, start: multiprocessing.synchronize.Event) -> None:
    settings = Settings()
    db = Database(DatabaseSettings(url=url, retry_seconds=60))
    start.wait(timeout=30)
    while db.run(
        lambda s: callbacks.assign_due_callbacks(s, settings, SCHEDULER, SUNDAY_10, batch=50)
    ).assigned:
        pass
    db.dispose()


def test_two_scheduler_processes_assign_every_callback_exactly_once(
    site: Database, settings: Settings
) -> None:
    for n in range(10):
        add_agent(site, settings, f"agent{n}", capacity=100)
    ids = [request(site, settings) for _ in range(300)]
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_schedule, args=(site.settings.url, start)) for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=180)
        assert worker.exitcode == 0
    with site.session() as s:
        held = s.exec(select(Callback)).all()
        assigned = s.exec(
            select(AuditEvent.object_id).where(AuditEvent.action == "callback.assign")
        ).all()
    assert sorted(int(a) for a in assigned if a) == sorted(ids)  # each once, none twice
    loads = Counter(c.assigned_agent_id for c in held)
    assert max(loads.values()) - min(loads.values()) <= 1
