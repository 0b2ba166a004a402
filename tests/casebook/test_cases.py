from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from casebook import audit, cases, followups
from casebook.access import Actor
from casebook.case_search import CaseQuery, find_cases
from casebook.db import Database
from casebook.errors import AccessDenied, IllegalTransition, NotFound, RuleViolation
from casebook.models import (
    AuditEvent,
    Callback,
    CallbackStatus,
    Case,
    CaseStatus,
    ContactMethod,
    FollowUpResult,
)
from hotline.app.config import Settings
from tests.conftest import Staff

S = CaseStatus
R = FollowUpResult
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # a Sunday, 10:00 in Tripoli


def register(db: Database, settings: Settings, uniqueid: str | None = "1795370976.9") -> Case:
    return db.run(
        lambda s: cases.register_complaint(
            s,
            settings,
            Actor.system("ivr"),
            caller_number="0910000001",
            uniqueid=uniqueid,
            linkedid=uniqueid,
            draft_text="انقطاع الإنترنت منذ ثلاثة أيام",
            now=NOW,
        )
    )


def open_case(db: Database, settings: Settings, staff: Staff, uniqueid: str = "u-1") -> str:
    """A case confirmed, worked and resolved by the customer-care agent."""
    carer = staff.actor("carer")
    ref = register(db, settings, uniqueid).reference
    assert ref is not None
    db.run(
        lambda s: cases.confirm_draft(
            s, settings, carer, ref, text="انقطاع الإنترنت", category="network", now=NOW
        )
    )
    db.run(lambda s: cases.start_work(s, carer, ref, now=NOW))
    db.run(
        lambda s: cases.resolve_case(s, settings, carer, ref, summary="أعيد تشغيل المحطة", now=NOW)
    )
    return ref


def followup(
    db: Database,
    settings: Settings,
    actor: Actor,
    ref: str,
    result: FollowUpResult,
    **extra: object,
) -> None:
    db.run(
        lambda s: followups.log_followup(
            s,
            settings,
            actor,
            ref,
            method=ContactMethod.PHONE,
            result=result,
            now=NOW,
            **extra,  # type: ignore[arg-type]
        )
    )


def status_of(db: Database, ref: str) -> Case:
    with db.session() as s:
        case = s.exec(select(Case).where(Case.reference == ref)).one()
        s.expunge(case)
        return case


def events(db: Database, action: str) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)))


def test_registration_gives_a_reference_and_a_promise_at_once(
    db: Database, settings: Settings
) -> None:
    case = register(db, settings)
    assert case.status == S.DRAFT
    assert case.reference is not None and len(case.reference) == 9
    assert case.department == settings.cases.intake_department
    # Default SLA of 40 business hours from Sunday 10:00 Tripoli: Thursday 16:00, then 2 h more.
    assert case.promised_by == datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert [e.object_id for e in events(db, "case.register")] == [case.reference]


def test_a_retried_registration_of_one_channel_returns_the_same_case(
    db: Database, settings: Settings
) -> None:
    first = register(db, settings)
    again = register(db, settings)
    assert again.id == first.id
    with db.session() as s:
        assert len(s.exec(select(Case)).all()) == 1


def test_unknown_category_is_refused(db: Database, settings: Settings) -> None:
    with pytest.raises(Exception, match="unknown category 'weather'"):
        db.run(
            lambda s: cases.register_complaint(
                s, settings, Actor.system("ivr"), caller_number=None, category="weather"
            )
        )


def test_the_whole_path_to_a_formal_close(db: Database, settings: Settings, staff: Staff) -> None:
    ref = open_case(db, settings, staff)
    carer = staff.actor("carer")
    case = status_of(db, ref)
    assert case.status == S.RESOLVED
    assert case.confirmed_text == "انقطاع الإنترنت"
    assert case.draft_text == "انقطاع الإنترنت منذ ثلاثة أيام"  # the draft is kept beside it
    # Network SLA (16 h) from registration is earlier than the default promise: it wins.
    assert case.promised_by == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # Tuesday 10:00 local
    with db.session() as s:
        callback = s.exec(select(Callback)).one()
    assert callback.phone_number == "0910000001"
    assert callback.due_from == NOW + timedelta(hours=settings.callbacks.followup_delay_hours)

    followup(db, settings, carer, ref, R.SATISFIED, effort_score=5)
    closed = db.run(lambda s: cases.close_case(s, carer, ref, now=NOW))
    assert closed.status == S.CLOSED
    assert closed.closed_at == NOW


def test_closing_without_a_satisfied_followup_is_refused(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = open_case(db, settings, staff)
    carer = staff.actor("carer")
    with pytest.raises(RuleViolation, match="not confirmed they are satisfied"):
        db.run(lambda s: cases.close_case(s, carer, ref, reason="customer unreachable"))
    followup(db, settings, carer, ref, R.NO_ANSWER)
    with pytest.raises(RuleViolation, match="not confirmed they are satisfied"):
        db.run(lambda s: cases.close_case(s, carer, ref))
    assert status_of(db, ref).status == S.FOLLOW_UP


def test_a_supervisor_closes_otherwise_only_with_a_reason_that_is_kept(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = open_case(db, settings, staff)
    supervisor = staff.actor("supervisor")
    with pytest.raises(RuleViolation, match="needs a reason"):
        db.run(lambda s: cases.close_case(s, supervisor, ref))
    db.run(lambda s: cases.close_case(s, supervisor, ref, reason="لم نتمكن من الوصول للعميل"))
    case = status_of(db, ref)
    assert case.status == S.CLOSED
    assert case.close_reason == "لم نتمكن من الوصول للعميل"
    assert events(db, "case.closed")[0].detail["reason"] == "لم نتمكن من الوصول للعميل"


def test_not_satisfied_reopens_then_escalates_after_the_configured_rounds(
    db: Database, settings: Settings, staff: Staff
) -> None:
    settings.followup.rounds_before_escalation = 2
    ref = open_case(db, settings, staff)
    carer = staff.actor("carer")
    followup(db, settings, carer, ref, R.NOT_SATISFIED)
    case = status_of(db, ref)
    assert (case.status, case.escalation_level) == (S.IN_PROGRESS, 0)
    # What people read in the case's history is Arabic first.
    assert events(db, "case.in_progress")[-1].detail["why"].startswith("لم يرضَ المتصل")

    db.run(lambda s: cases.resolve_case(s, settings, carer, ref, summary="محاولة ثانية"))
    followup(db, settings, carer, ref, R.NOT_SATISFIED)
    case = status_of(db, ref)
    assert (case.status, case.escalation_level, case.unsatisfied_rounds) == (S.ESCALATED, 1, 0)
    assert events(db, "case.escalated")[0].detail["level"] == 1
    assert events(db, "case.escalated")[0].detail["reason"].startswith("لم يرضَ المتصل بعد 2")


def test_escalation_stops_at_the_top_management_level(
    db: Database, settings: Settings, staff: Staff
) -> None:
    settings.followup.max_escalation_level = 2
    ref = open_case(db, settings, staff)
    supervisor = staff.actor("supervisor")
    for _ in range(3):
        db.run(lambda s: cases.escalate_case(s, settings, supervisor, ref, reason="persistent"))
    assert status_of(db, ref).escalation_level == 2


def test_partially_satisfied_requests_another_followup(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = open_case(db, settings, staff)

    def answered(s: Session) -> None:  # the first follow-up callback was made
        callback = s.exec(select(Callback)).one()
        callback.status = CallbackStatus.DONE.value
        s.add(callback)

    db.run(answered)
    followup(db, settings, staff.actor("carer"), ref, R.PARTIALLY_SATISFIED, effort_score=3)
    with db.session() as s:
        statuses = [c.status for c in s.exec(select(Callback).order_by(col(Callback.id)))]
    assert statuses == [CallbackStatus.DONE, CallbackStatus.PENDING]
    assert status_of(db, ref).status == S.FOLLOW_UP


def test_a_followup_can_reroute_the_case_to_another_department(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = open_case(db, settings, staff)
    followup(db, settings, staff.actor("carer"), ref, R.NOT_SATISFIED, reroute_to="technical")
    case = status_of(db, ref)
    assert (case.department, case.assigned_agent_id) == ("technical", None)
    assert events(db, "case.reroute")[0].detail == {"from": "customer-care", "to": "technical"}
    with pytest.raises(Exception, match="unknown department 'nowhere'"):
        followup(db, settings, staff.actor("supervisor"), ref, R.NO_ANSWER, reroute_to="nowhere")


def test_followups_are_only_for_resolved_cases_and_effort_is_on_the_scale(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer = staff.actor("carer")
    ref = register(db, settings).reference
    assert ref is not None
    with pytest.raises(RuleViolation, match="after resolution"):
        followup(db, settings, carer, ref, R.SATISFIED)
    ref = open_case(db, settings, staff, "u-2")
    with pytest.raises(RuleViolation, match="between 1 and 5"):
        followup(db, settings, carer, ref, R.SATISFIED, effort_score=9)
    with pytest.raises(RuleViolation, match="no effort score without an answer"):
        followup(db, settings, carer, ref, R.NO_ANSWER, effort_score=3)


def test_illegal_moves_through_the_services_are_refused(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer = staff.actor("carer")
    ref = register(db, settings).reference
    assert ref is not None
    with pytest.raises(IllegalTransition, match="draft cannot become resolved"):
        db.run(lambda s: cases.resolve_case(s, settings, carer, ref, summary="x"))
    with pytest.raises(IllegalTransition, match="draft cannot become in_progress"):
        db.run(lambda s: cases.start_work(s, carer, ref))
    with pytest.raises(IllegalTransition, match="draft cannot become closed"):
        db.run(lambda s: cases.close_case(s, staff.actor("supervisor"), ref, reason="x"))
    db.run(lambda s: cases.reject_draft(s, carer, ref, reason="مكالمة خاطئة"))
    with pytest.raises(IllegalTransition, match="rejected cannot become open"):
        db.run(lambda s: cases.confirm_draft(s, settings, carer, ref, text="x", category="other"))
    assert status_of(db, ref).status == S.REJECTED


def test_an_agent_reading_another_departments_case_is_refused_and_audited(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = register(db, settings).reference
    assert ref is not None
    biller = staff.actor("biller")
    with pytest.raises(AccessDenied, match="biller is not concerned"):
        db.run(lambda s: cases.get_case(s, biller, ref))
    refusal = events(db, "case.read")
    assert [(e.actor, e.allowed, e.object_id) for e in refusal] == [("biller", False, ref)]
    # Changing it is refused the same way.
    with pytest.raises(AccessDenied):
        db.run(lambda s: cases.reject_draft(s, biller, ref, reason="x"))
    assert status_of(db, ref).status == S.DRAFT

    db.run(lambda s: cases.get_case(s, staff.actor("carer"), ref))
    db.run(lambda s: cases.get_case(s, staff.actor("qa"), ref))
    allowed = [(e.actor, e.allowed) for e in events(db, "case.read") if e.allowed]
    assert allowed == [("carer", True), ("qa", True)]


def test_listing_shows_only_the_staff_concerned_and_is_audited(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = register(db, settings).reference

    def listed(username: str, query: CaseQuery) -> list[str | None]:
        page = db.run(lambda s: find_cases(s, settings, staff.actor(username), query))
        return [case.reference for case in page.items]

    assert listed("biller", CaseQuery()) == []
    assert listed("carer", CaseQuery()) == [ref]
    assert listed("admin", CaseQuery(status=S.OPEN)) == []
    audited = events(db, "case.list")
    assert [e.detail["references"] for e in audited] == [[], [ref], []]


def test_wrong_and_mistyped_references_are_clear_not_found_errors(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = register(db, settings).reference
    assert ref is not None
    admin = staff.actor("admin")
    mistyped = ref[:-1] + str((int(ref[-1]) + 1) % 10)
    with pytest.raises(NotFound, match="check digit"):
        db.run(lambda s: cases.get_case(s, admin, mistyped))
    with pytest.raises(NotFound, match="9 digits"):
        db.run(lambda s: cases.get_case(s, admin, "12"))


def test_the_audit_log_refuses_updates_and_deletes(
    db: Database, owner_db: Database, settings: Settings
) -> None:
    register(db, settings)
    # Even to the owner (the runtime role may not even try: tests/casebook/test_roles.py).
    for statement in ("UPDATE audit_event SET actor = 'someone'", "DELETE FROM audit_event"):
        with pytest.raises(DBAPIError, match="append-only"), owner_db.engine.begin() as connection:
            connection.execute(text(statement))
    assert [e.actor for e in events(db, "case.register")] == ["system:ivr"]


def test_only_supervisors_and_admins_read_the_audit_log(db: Database, staff: Staff) -> None:
    with pytest.raises(AccessDenied):
        db.run(lambda s: audit.list_events(s, staff.actor("carer")))
    rows = db.run(lambda s: audit.list_events(s, staff.actor("supervisor")).items)
    assert any(e.action == "audit.list" and not e.allowed for e in rows)


def test_every_follow_up_result_has_one_word_an_agent_types() -> None:
    assert sorted(followups.RESULT_WORDS.values()) == sorted(FollowUpResult)
    assert followups.RESULT_WORDS["partial"] == FollowUpResult.PARTIALLY_SATISFIED
