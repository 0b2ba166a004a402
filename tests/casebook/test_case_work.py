"""Case work (issue 18): taking and assigning cases, internal notes, a supervisor's reopen, and
the story `cases show` tells (from the audit log), people named by user name."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from casebook import cases, notes, timeline
from casebook.db import Database
from casebook.errors import AccessDenied, Conflict, IllegalTransition, NotFound, RuleViolation
from casebook.limits import TextRefused
from casebook.models import (
    AuditEvent,
    Case,
    CaseNote,
    CaseStatus,
    FollowUpResult,
    Recording,
    RecordingKind,
)
from hotline.app.config import Settings
from recordings.catalogue import list_recordings
from tests.casebook.test_cases import NOW, followup, open_case, register, status_of
from tests.conftest import Staff

S = CaseStatus


def confirmed(db: Database, settings: Settings, staff: Staff, uniqueid: str = "w-1") -> str:
    """A case confirmed into customer-care, open and unassigned."""
    ref = register(db, settings, uniqueid).reference
    assert ref is not None
    db.run(
        lambda s: cases.confirm_draft(
            s, settings, staff.actor("carer"), ref, text="انقطاع", category="network", now=NOW
        )
    )
    return ref


def denials(db: Database, action: str) -> list[AuditEvent]:
    with db.session() as s:
        query = select(AuditEvent).where(
            AuditEvent.action == action, col(AuditEvent.allowed).is_(False)
        )
        return list(s.exec(query))


def test_an_agent_takes_an_unassigned_case_of_their_department(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = confirmed(db, settings, staff)
    carer = staff.actor("carer")
    taken = db.run(lambda s: cases.assign_case(s, carer, ref, to="carer"))
    assert taken.assigned_agent_id == carer.agent_id
    with pytest.raises(RuleViolation, match="already assigned to carer"):
        db.run(lambda s: cases.assign_case(s, carer, ref, to="carer"))


def test_assigning_others_or_reassigning_is_a_supervisors_and_refusals_are_audited(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = confirmed(db, settings, staff)
    carer = staff.actor("carer")
    with pytest.raises(AccessDenied, match="assigning it to supervisor is a supervisor's"):
        db.run(lambda s: cases.assign_case(s, carer, ref, to="supervisor"))
    supervisor = staff.actor("supervisor")
    db.run(lambda s: cases.assign_case(s, supervisor, ref, to="carer"))
    staff.add("carer2", ["agent"], "customer-care")
    other = staff.actor("carer2")
    with pytest.raises(AccessDenied, match="someone else's case"):
        db.run(lambda s: cases.assign_case(s, other, ref, to="carer2"))
    assert len(denials(db, "case.assign")) == 2
    db.run(lambda s: cases.assign_case(s, supervisor, ref, to="carer2"))
    assert status_of(db, ref).assigned_agent_id == other.agent_id
    with db.session() as s:
        entries = s.exec(
            select(AuditEvent).where(AuditEvent.action == "case.assign", AuditEvent.allowed)
        ).all()
    assert [e.detail for e in entries] == [
        {"from": None, "to": "carer"},
        {"from": "carer", "to": "carer2"},
    ]


def test_an_agent_of_another_department_cannot_take_it_nor_a_disabled_agent_hold_it(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = confirmed(db, settings, staff)
    biller = staff.actor("biller")
    with pytest.raises(AccessDenied, match="not concerned"):
        db.run(lambda s: cases.assign_case(s, biller, ref, to="biller"))
    supervisor = staff.actor("supervisor")
    with pytest.raises(NotFound, match="no agent ghost"):
        db.run(lambda s: cases.assign_case(s, supervisor, ref, to="ghost"))


def test_assigning_is_compare_and_set(db: Database, settings: Settings, staff: Staff) -> None:
    ref = confirmed(db, settings, staff)
    seen = status_of(db, ref).version
    supervisor = staff.actor("supervisor")
    db.run(lambda s: cases.assign_case(s, supervisor, ref, to="carer", seen_version=seen))
    with pytest.raises(Conflict, match="assigned"):
        db.run(lambda s: cases.assign_case(s, supervisor, ref, to="biller", seen_version=seen))


def test_start_work_then_resolve_without_a_false_escalation(
    db: Database, settings: Settings, staff: Staff
) -> None:
    """The defect "no way to start work": an open case is started, then resolved."""
    ref = confirmed(db, settings, staff)
    carer = staff.actor("carer")
    seen = status_of(db, ref).version
    db.run(lambda s: cases.start_work(s, carer, ref, seen_version=seen))
    with pytest.raises(Conflict):
        db.run(lambda s: cases.start_work(s, carer, ref, seen_version=seen))
    db.run(lambda s: cases.resolve_case(s, settings, carer, ref, summary="أصلحت"))
    case = status_of(db, ref)
    assert (case.status, case.escalation_level) == (S.RESOLVED, 0)


def test_only_a_supervisor_reopens_a_closed_case_with_a_reason(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = open_case(db, settings, staff)
    carer = staff.actor("carer")
    followup(db, settings, carer, ref, FollowUpResult.SATISFIED)
    db.run(lambda s: cases.close_case(s, carer, ref))
    with pytest.raises(RuleViolation, match="a supervisor reopens it"):
        db.run(lambda s: cases.start_work(s, carer, ref))
    with pytest.raises(AccessDenied, match="may not move a closed case to in_progress"):
        db.run(lambda s: cases.reopen_case(s, carer, ref, reason="عاد الانقطاع"))
    assert len(denials(db, "case.in_progress")) == 1
    supervisor = staff.actor("supervisor")
    with pytest.raises(RuleViolation, match="needs a reason"):
        db.run(lambda s: cases.reopen_case(s, supervisor, ref, reason="  "))
    reopened = db.run(lambda s: cases.reopen_case(s, supervisor, ref, reason="عاد الانقطاع"))
    assert (reopened.status, reopened.closed_at, reopened.close_reason) == (
        S.IN_PROGRESS,
        None,
        None,
    )
    with pytest.raises(RuleViolation, match="only a closed case reopens"):
        db.run(lambda s: cases.reopen_case(s, supervisor, ref, reason="again"))
    with db.session() as s:
        entry = s.exec(
            select(AuditEvent)
            .where(AuditEvent.action == "case.in_progress")
            .order_by(
                AuditEvent.seq.desc()  # type: ignore[attr-defined]
            )
        ).first()
    assert entry is not None
    assert entry.detail == {"from": "closed", "reopened": True, "reason": "عاد الانقطاع"}


def test_a_rejected_draft_stays_rejected(db: Database, settings: Settings, staff: Staff) -> None:
    ref = register(db, settings, "w-rej").reference
    assert ref is not None
    supervisor = staff.actor("supervisor")
    db.run(lambda s: cases.reject_draft(s, supervisor, ref, reason="ليست شكوى"))
    with pytest.raises(IllegalTransition):
        db.run(lambda s: cases.start_work(s, supervisor, ref))
    with pytest.raises(RuleViolation, match="only a closed case"):
        db.run(lambda s: cases.reopen_case(s, supervisor, ref, reason="x"))


def test_notes_are_kept_bounded_audited_and_change_nothing_of_the_case(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = confirmed(db, settings, staff)
    carer = staff.actor("carer")
    before = status_of(db, ref)
    note = db.run(lambda s: notes.add_note(s, carer, ref, text=" اتصل العميل مرة أخرى\n"))
    assert note.text == "اتصل العميل مرة أخرى"
    after = status_of(db, ref)
    assert (after.version, after.status) == (before.version, before.status)
    with pytest.raises(RuleViolation, match="empty"):
        db.run(lambda s: notes.add_note(s, carer, ref, text="   "))
    with pytest.raises(TextRefused, match=r"case_note\.text"):
        db.run(lambda s: notes.add_note(s, carer, ref, text="x" * 4_001))
    with pytest.raises(AccessDenied):
        db.run(lambda s: notes.add_note(s, staff.actor("biller"), ref, text="not mine"))
    with db.session() as s:
        assert len(s.exec(select(CaseNote)).all()) == 1
        entry = s.exec(
            select(AuditEvent).where(AuditEvent.action == "case.note", AuditEvent.allowed)
        ).one()
    assert entry.detail == {"note": note.id, "chars": len(note.text)}


def test_the_story_names_every_change_with_who_and_when_and_user_names(
    db: Database, settings: Settings, staff: Staff
) -> None:
    """The defect "cases show hides the story": history, follow-ups, callbacks, notes, the
    summary and the close reason, by user name."""
    ref = open_case(db, settings, staff)
    carer, supervisor = staff.actor("carer"), staff.actor("supervisor")
    followup(db, settings, carer, ref, FollowUpResult.PARTIALLY_SATISFIED, notes="نصف الحل")
    db.run(lambda s: notes.add_note(s, supervisor, ref, text="راقب هذه الشكوى", now=NOW))
    db.run(lambda s: cases.close_case(s, supervisor, ref, reason="لا رد", now=NOW))
    later = NOW + timedelta(hours=1)
    db.run(lambda s: cases.reopen_case(s, supervisor, ref, reason="عاد", now=later))
    db.run(lambda s: cases.assign_case(s, supervisor, ref, to="supervisor"))
    story = db.run(lambda s: timeline.case_story(s, supervisor, ref))

    moves = [(step.by, step.action, step.status) for step in story.history]
    assert moves == [
        ("system:ivr", "case.register", "draft"),
        ("carer", "case.open", "open"),
        ("carer", "case.in_progress", "in_progress"),
        ("carer", "case.resolved", "resolved"),
        ("carer", "case.follow_up", "follow_up"),
        ("supervisor", "case.closed", "closed"),
        ("supervisor", "case.in_progress", "in_progress"),
        ("supervisor", "case.assign", None),
    ]
    assert story.history[0].detail == {}  # the caller's number stays in the audit log
    assert story.history[5].detail["reason"] == "لا رد"
    assert story.history[6].detail == {"from": "closed", "reopened": True, "reason": "عاد"}
    assert story.history[7].detail == {"from": "carer", "to": "supervisor"}
    assert (story.assigned_to, story.confirmed_by) == ("supervisor", "carer")
    assert story.case.resolution_summary == "أعيد تشغيل المحطة"
    assert [(f.by, f.result, f.notes) for f in story.followups] == [
        ("carer", "partially_satisfied", "نصف الحل")
    ]
    # One follow-up callback (the partial answer kept the open one), cancelled by the close.
    assert [(c.reason, c.status) for c in story.callbacks] == [("follow_up", "cancelled")]
    assert all(c.id > 0 for c in story.callbacks)
    assert [(n.by, n.text) for n in story.notes] == [("supervisor", "راقب هذه الشكوى")]
    with db.session() as s:
        reads = s.exec(select(AuditEvent).where(AuditEvent.action == "case.read")).all()
    assert [r.actor for r in reads] == ["supervisor"]


def test_the_story_is_only_for_the_staff_concerned(
    db: Database, settings: Settings, staff: Staff
) -> None:
    ref = confirmed(db, settings, staff)
    with pytest.raises(AccessDenied):
        db.run(lambda s: timeline.case_story(s, staff.actor("biller"), ref))
    assert len(denials(db, "case.read")) == 1


def add_recording(db: Database, case_ref: str, kind: RecordingKind, name: str) -> int:
    def work(s: Session) -> int:
        case = s.exec(select(Case).where(Case.reference == case_ref)).one()
        recording = Recording(
            case_id=case.id, kind=kind.value, path=name, sha256="0" * 64, duration_seconds=12.5
        )
        s.add(recording)
        s.flush()
        assert recording.id is not None
        return recording.id

    return db.run(work)


def test_recordings_are_listed_by_the_playing_rule_and_the_listing_is_audited(
    db: Database, settings: Settings, staff: Staff
) -> None:
    """The defect "no way to find a case's recordings"."""
    mine = confirmed(db, settings, staff, "w-mine")
    other = confirmed(db, settings, staff, "w-other")
    carer = staff.actor("carer")
    db.run(lambda s: cases.assign_case(s, carer, mine, to="carer"))
    message = add_recording(db, mine, RecordingKind.MESSAGE, "a/message.wav")
    call = add_recording(db, mine, RecordingKind.CALL, "a/call.wav")
    add_recording(db, other, RecordingKind.CALL, "b/call.wav")

    seen = db.run(lambda s: list_recordings(s, carer).items)
    assert sorted(item.recording.id or 0 for item in seen) == [message, call]
    by_id = {item.recording.id: item for item in seen}
    assert (by_id[call].agent, by_id[call].case_reference) == ("carer", mine)
    assert by_id[message].agent is None  # the caller's own voice: no agent on the line
    # The other case is of carer's department (they may read it) but not theirs to hear.
    assert db.run(lambda s: list_recordings(s, carer, reference=other).items) == []
    qa = staff.actor("qa")
    assert len(db.run(lambda s: list_recordings(s, qa).items)) == 3
    assert [
        i.recording.id for i in db.run(lambda s: list_recordings(s, qa, reference=mine).items)
    ] in (
        [call, message],
        [message, call],
    )
    with pytest.raises(AccessDenied):
        db.run(lambda s: list_recordings(s, staff.actor("biller"), reference=mine))
    with db.session() as s:
        listed = s.exec(select(AuditEvent).where(AuditEvent.action == "recording.list")).all()
    assert listed[0].detail["recordings"] == sorted([message, call], reverse=True)
