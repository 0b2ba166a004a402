"""Follow-up callbacks with a lifecycle (issue 18): at most one open per case, also in the
database; cancelled, with the reason kept and audited, when the case closes or goes back to
work; `callbacks next` says why nothing is offered; a dial is checked before the PBX."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from time import monotonic, sleep

import pytest
from alembic import command
from sqlalchemy import DateTime, bindparam, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from casebook import callbacks, cases, followups, operations
from casebook.access import Actor
from casebook.db import Database, _alembic_config, is_sqlite
from casebook.errors import RuleViolation
from casebook.models import (
    Agent,
    AttemptResult,
    AuditEvent,
    Callback,
    CallbackReason,
    CallbackStatus,
    Case,
    ContactMethod,
    FollowUpResult,
)
from hotline.app.config import Settings
from tests.casebook.test_cases import NOW, open_case
from tests.conftest import Staff, owner_connection

R = FollowUpResult
OPEN = (CallbackStatus.PENDING.value, CallbackStatus.ASSIGNED.value)


def followup_callbacks(db: Database, reference: str) -> list[Callback]:
    with db.session() as s:
        case = s.exec(select(Case).where(Case.reference == reference)).one()
        query = select(Callback).where(Callback.case_id == case.id).order_by(col(Callback.id))
        return list(s.exec(query))


def open_ones(db: Database, reference: str) -> list[Callback]:
    return [c for c in followup_callbacks(db, reference) if c.status in OPEN]


def audited(db: Database, action: str) -> list[AuditEvent]:
    with db.session() as s:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.id))
        return list(s.exec(query))


def log(db: Database, settings: Settings, actor: Actor, reference: str, result: R) -> None:
    db.run(
        lambda s: followups.log_followup(
            s, settings, actor, reference, method=ContactMethod.PHONE, result=result, now=NOW
        )
    )


def resolve(db: Database, settings: Settings, actor: Actor, reference: str) -> None:
    db.run(lambda s: cases.resolve_case(s, settings, actor, reference, summary="أصلحت", now=NOW))


def test_a_case_resolved_four_times_has_one_open_callback(
    db: Database, settings: Settings, staff: Staff
) -> None:
    settings.followup.rounds_before_escalation = 10
    carer = staff.actor("carer")
    reference = open_case(db, settings, staff)
    for _ in range(3):
        log(db, settings, carer, reference, R.NOT_SATISFIED)  # back to work
        resolve(db, settings, carer, reference)
    listed = followup_callbacks(db, reference)
    assert [c.status for c in listed] == ["cancelled"] * 3 + ["pending"]
    assert {c.cancel_reason for c in listed[:3]} == {"case in_progress"}
    assert all(c.cancelled_at == NOW for c in listed[:3])
    cancels = audited(db, "callback.cancel")
    assert [int(e.object_id or 0) for e in cancels] == [c.id for c in listed[:3]]
    assert cancels[0].detail == {"case": reference, "reason": "case in_progress", "from": "pending"}


def test_a_case_closed_satisfied_keeps_no_open_callback(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer = staff.actor("carer")
    reference = open_case(db, settings, staff)
    log(db, settings, carer, reference, R.SATISFIED)  # by letter: the callback was not made
    db.run(lambda s: cases.close_case(s, carer, reference, now=NOW))
    (callback,) = followup_callbacks(db, reference)
    assert (callback.status, callback.cancel_reason) == ("cancelled", "case closed")


def test_a_supervisors_forced_close_and_an_escalation_cancel_it_too(
    db: Database, settings: Settings, staff: Staff
) -> None:
    supervisor = staff.actor("supervisor")
    forced = open_case(db, settings, staff, "u-1")
    db.run(lambda s: cases.close_case(s, supervisor, forced, reason="لا رد", now=NOW))
    escalated = open_case(db, settings, staff, "u-2")
    db.run(lambda s: cases.escalate_case(s, settings, supervisor, escalated, reason="x", now=NOW))
    assert [c.cancel_reason for c in followup_callbacks(db, forced)] == ["case closed"]
    assert [c.cancel_reason for c in followup_callbacks(db, escalated)] == ["case escalated"]
    # The history stays: the cancelled rows are kept, each cancellation audited.
    assert len(audited(db, "callback.cancel")) == 2


def test_a_second_request_keeps_the_open_one(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer = staff.actor("carer")
    reference = open_case(db, settings, staff)
    (first,) = followup_callbacks(db, reference)
    # Partly satisfied, told by letter while the callback still waits: the same one is kept.
    log(db, settings, carer, reference, R.PARTIALLY_SATISFIED)
    assert [c.id for c in open_ones(db, reference)] == [first.id]
    assert [e.object_id for e in audited(db, "callback.kept")] == [str(first.id)]


def test_the_database_refuses_a_second_open_followup_callback(
    db: Database, settings: Settings, staff: Staff
) -> None:
    reference = open_case(db, settings, staff)
    (first,) = followup_callbacks(db, reference)

    def another(status: CallbackStatus, reason: CallbackReason) -> None:
        def work(s: Session) -> None:
            s.add(
                Callback(
                    case_id=first.case_id,
                    phone_number=first.phone_number,
                    reason=reason.value,
                    status=status.value,
                    due_from=NOW,
                    overdue_at=NOW + timedelta(days=1),
                )
            )

        db.run(work)

    with pytest.raises(IntegrityError):
        another(CallbackStatus.ASSIGNED, CallbackReason.FOLLOW_UP)
    # Finished ones, and other reasons, are not counted.
    another(CallbackStatus.DONE, CallbackReason.FOLLOW_UP)
    another(CallbackStatus.PENDING, CallbackReason.ABANDONED)
    assert len(open_ones(db, reference)) == 2


def test_two_requests_at_once_make_one_callback(
    db: Database, settings: Settings, staff: Staff
) -> None:
    """PostgreSQL: the second request does not see the first's uncommitted row, inserts, waits
    on the unique index and, once the first commits, is refused there and keeps the first's."""
    if is_sqlite(db.engine):
        pytest.skip("SQLite's BEGIN IMMEDIATE runs one writing transaction at a time")
    carer = staff.actor("carer")
    reference = open_case(db, settings, staff)
    (made,) = followup_callbacks(db, reference)

    def answered(s: Session) -> None:  # that one was made: none is open
        callback = s.get(Callback, made.id)
        assert callback is not None
        callback.status = CallbackStatus.DONE.value
        s.add(callback)

    db.run(answered)
    first_inserted = threading.Event()

    def request(s: Session) -> int | None:
        case = s.exec(select(Case).where(Case.reference == reference)).one()
        callback = callbacks.request_followup_callback(s, settings, carer, case, NOW)
        return None if callback is None else callback.id

    def first(s: Session) -> int | None:
        made = request(s)
        first_inserted.set()
        deadline = monotonic() + 30
        while not _someone_waits_on_a_lock(s) and monotonic() < deadline:
            sleep(0.05)
        return made

    def second() -> int | None:
        assert first_inserted.wait(30)
        return db.run(request)

    with ThreadPoolExecutor(2) as pool:
        ids = [pool.submit(db.run, first), pool.submit(second)]
        first_id, second_id = (future.result(timeout=60) for future in ids)
    assert first_id == second_id
    assert [c.id for c in open_ones(db, reference)] == [first_id]
    assert [e.object_id for e in audited(db, "callback.kept")] == [str(first_id)]


def _someone_waits_on_a_lock(s: Session) -> bool:
    # The statistics are a snapshot per transaction unless cleared.
    s.connection().execute(text("SELECT pg_stat_clear_snapshot()"))
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> "
        "pg_backend_pid()"
    )
    return bool(s.connection().execute(query).scalar_one())


def test_an_attempt_reported_after_the_case_moved_on_keeps_it_cancelled(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer, supervisor = staff.actor("carer"), staff.actor("supervisor")
    reference = open_case(db, settings, staff)
    (callback,) = followup_callbacks(db, reference)

    def hold(s: Session) -> None:
        held = s.get(Callback, callback.id)
        assert held is not None
        held.status, held.assigned_agent_id = CallbackStatus.ASSIGNED.value, carer.agent_id
        s.add(held)

    db.run(hold)
    db.run(lambda s: callbacks.start_attempt(s, carer, callback.id or 0, "cb-late", NOW))
    db.run(lambda s: cases.close_case(s, supervisor, reference, reason="أغلقت", now=NOW))
    after = db.run(
        lambda s: callbacks.record_attempt_result(
            s, settings, carer, "cb-late", AttemptResult.NO_ANSWER, NOW
        )
    )
    assert (after.status, after.attempts, after.cancel_reason) == ("cancelled", 1, "case closed")


# --- why nothing is offered -------------------------------------------------------------------

SUNDAY_10 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # 10:00 in Tripoli, a working day


def pending_due(db: Database, settings: Settings, count: int) -> None:
    def work(s: Session) -> None:
        for n in range(count):
            s.add(
                Callback(
                    phone_number=f"091000000{n}",
                    reason=CallbackReason.ABANDONED.value,
                    due_from=SUNDAY_10 - timedelta(hours=1),
                    overdue_at=SUNDAY_10 + timedelta(days=1),
                )
            )

    db.run(work)


def beat(db: Database, at: datetime) -> None:
    db.run(lambda s: operations.beat(s, operations.SCHEDULER, "host:1", {}, at))


def test_next_says_the_scheduler_is_not_running_and_how_many_wait(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer = staff.actor("carer")
    pending_due(db, settings, 5)
    offer = db.run(lambda s: callbacks.next_callback(s, settings, carer, SUNDAY_10))
    assert offer.callback is None
    assert (offer.reasons, offer.waiting, offer.scheduler_seen_at) == (
        [callbacks.Idle.NO_SCHEDULER],
        5,
        None,
    )
    beat(db, SUNDAY_10 - timedelta(hours=3))  # it ran, then fell silent
    offer = db.run(lambda s: callbacks.next_callback(s, settings, carer, SUNDAY_10))
    assert offer.reasons == [callbacks.Idle.NO_SCHEDULER]
    assert offer.scheduler_seen_at == SUNDAY_10 - timedelta(hours=3)


def test_next_says_off_shift_or_nothing_assigned_when_the_scheduler_runs(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer, supervisor = staff.actor("carer"), staff.actor("supervisor")
    evening = SUNDAY_10 + timedelta(hours=9)  # 19:00 in Tripoli: after business hours
    beat(db, evening)
    offer = db.run(lambda s: callbacks.next_callback(s, settings, carer, evening))
    assert offer.reasons == [callbacks.Idle.OFF_SHIFT]
    assert offer.shift == callbacks.Shift(list(settings.business_hours.days), time(8), time(16))
    beat(db, SUNDAY_10)
    offer = db.run(lambda s: callbacks.next_callback(s, settings, carer, SUNDAY_10))
    assert offer.reasons == [callbacks.Idle.NONE_ASSIGNED]
    offer = db.run(lambda s: callbacks.next_callback(s, settings, supervisor, SUNDAY_10))
    assert offer.reasons == [callbacks.Idle.NOT_AN_AGENT]


# --- checked before the PBX -------------------------------------------------------------------


def test_a_dial_is_checked_for_the_call_window_and_a_cancelled_callback(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer, supervisor = staff.actor("carer"), staff.actor("supervisor")
    db.run(lambda s: _give_extension(s, carer))
    reference = open_case(db, settings, staff)
    (callback,) = followup_callbacks(db, reference)
    callback_id = callback.id or 0

    def hold(s: Session) -> None:
        held = s.get(Callback, callback_id)
        assert held is not None
        held.status, held.assigned_agent_id = CallbackStatus.ASSIGNED.value, carer.agent_id
        s.add(held)

    db.run(hold)
    late = SUNDAY_10 + timedelta(hours=11)  # 21:00 in Tripoli: past the 09:00-20:00 window
    with pytest.raises(RuleViolation, match="called only between 09:00 and 20:00"):
        db.run(lambda s: callbacks.ready_to_dial(s, settings, carer, callback_id, late))
    target = db.run(lambda s: callbacks.ready_to_dial(s, settings, carer, callback_id, SUNDAY_10))
    assert target.extension == "201"
    db.run(lambda s: cases.close_case(s, supervisor, reference, reason="أغلقت", now=NOW))
    with pytest.raises(RuleViolation, match=r"is cancelled \(case closed\)"):
        db.run(lambda s: callbacks.ready_to_dial(s, settings, carer, callback_id, SUNDAY_10))


def _give_extension(s: Session, actor: Actor) -> None:
    agent = s.get(Agent, actor.agent_id)
    assert agent is not None
    agent.extension = "201"
    s.add(agent)


# --- the migration ----------------------------------------------------------------------------


def test_the_migration_cancels_the_piles_and_then_holds_one_open_per_case(
    db: Database, settings: Settings, staff: Staff
) -> None:
    """Down to 0006, piles made as the old code made them, up again: one open per case kept
    (the one an agent holds, else the newest), the rest cancelled with a reason."""
    waiting = open_case(db, settings, staff, "u-1")
    closed = open_case(db, settings, staff, "u-2")
    with owner_connection(db) as connection:
        command.downgrade(_alembic_config(connection), "0006")
    db.engine.dispose()
    ids = {}
    with db.engine.begin() as connection:
        for reference in (waiting, closed):
            ids[reference] = connection.execute(
                text("SELECT id FROM complaint_case WHERE reference = :r"), {"r": reference}
            ).scalar_one()
        insert = text(
            "INSERT INTO callback (case_id, phone_number, reason, language, due_from, overdue_at, "
            "attempts, status, created_at, version) VALUES (:case, '0910000001', 'follow_up', "
            "'ar', :at, :at, 0, :status, :at, 1)"
        ).bindparams(bindparam("at", type_=DateTime(timezone=True)))
        for status in ("assigned", "pending"):
            connection.execute(insert, {"case": ids[waiting], "at": NOW, "status": status})
            connection.execute(insert, {"case": ids[closed], "at": NOW, "status": status})
        connection.execute(
            text("UPDATE complaint_case SET status = 'closed' WHERE id = :id"), {"id": ids[closed]}
        )
    with owner_connection(db) as connection:
        command.upgrade(_alembic_config(connection), "head")
        indexes = {i["name"] for i in inspect(connection).get_indexes("callback")}
    db.engine.dispose()
    assert "uq_callback_open_followup" in indexes
    kept = open_ones(db, waiting)
    assert [c.status for c in kept] == ["assigned"]
    cancelled = [c for c in followup_callbacks(db, waiting) if c.status == "cancelled"]
    assert {c.cancel_reason for c in cancelled} == {"another follow-up callback is open"}
    assert len(cancelled) == 2
    assert {c.cancel_reason for c in followup_callbacks(db, closed)} == {"case closed"}
    assert all(c.version == 2 for c in cancelled)
    # The case still waiting is followed up as before; closing it cancels the one kept.
    carer = staff.actor("carer")
    log(db, settings, carer, waiting, R.SATISFIED)
    db.run(lambda s: cases.close_case(s, carer, waiting, now=NOW))
    assert open_ones(db, waiting) == []
