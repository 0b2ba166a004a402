"""Bounded input (issue 17, item 5): every text field has a limit, the models', checked before
the database by casebook.limits, the same on SQLite (which ignores VARCHAR lengths) and
PostgreSQL (which would fail with a driver error)."""

from __future__ import annotations

import re
import typing
from datetime import timedelta

import pytest
from sqlalchemy import JSON
from sqlmodel import Session, SQLModel, col, select

from casebook import agents, audit, cases, drafts, followups, jobs
from casebook.access import Actor
from casebook.batch import insert_rows
from casebook.clock import utcnow
from casebook.db import Database
from casebook.jobs import QueuePolicy
from casebook.limits import TextRefused, limits_of
from casebook.models import (
    COMPLAINT_TEXT,
    NOTE_TEXT,
    AuditEvent,
    Call,
    Case,
    CaseStatus,
    ContactMethod,
    FollowUp,
    FollowUpResult,
    RecordingKind,
    TranscriptionJob,
)
from hotline.app.config import Settings
from recordings.ingest import ingest_recording
from tests.conftest import Staff
from tests.recordings.helpers import write_wav

IVR = Actor.system("ivr")
HUNDRED_KB = "x" * 102_400


def table_models() -> list[type[SQLModel]]:
    found = []
    for mapper in SQLModel._sa_registry.mappers:
        model = mapper.class_
        if model.__module__ == "casebook.models":
            found.append(model)
    return found


def test_every_text_field_of_every_table_has_a_limit() -> None:
    unbounded = []
    for model in table_models():
        limited = {rule.field for rule in limits_of(model).texts}
        hints = typing.get_type_hints(model)
        for name in model.model_fields:
            if hints[name] in (str, str | None) and name not in limited:
                unbounded.append(f"{model.__tablename__}.{name}")
    assert unbounded == []


def test_the_json_columns_people_type_into_are_bounded() -> None:
    bounded = {
        (limits_of(model).table, rule.field)
        for model in table_models()
        for rule in limits_of(model).json
    }
    assert {("audit_event", "detail"), ("agent", "skills"), ("agent", "languages")} <= bounded
    # The others are the system's own (transcript segments, heartbeats, scores by criterion,
    # the IVR's menu choices): bounded by what makes them.
    unbounded = {
        (limits_of(model).table, column.name)
        for model in table_models()
        for column in model.__table__.columns  # type: ignore[attr-defined]
        if isinstance(column.type, JSON)
    } - bounded
    assert unbounded == {
        ("transcript", "segments"),
        ("heartbeat", "state"),
        ("qa_review", "scores"),
        ("call", "ivr_choices"),
    }


def a_draft(db: Database, settings: Settings, text: str = "الفاتورة غير صحيحة") -> str:
    def work(session: Session) -> str:
        case = cases.register_complaint(
            session, settings, IVR, caller_number="0912345678", draft_text=text
        )
        case.department = "customer-care"
        session.add(case)
        assert case.reference is not None
        return case.reference

    return db.run(work)


def stored(db: Database, reference: str) -> Case:
    with db.session() as session:
        return session.exec(select(Case).where(Case.reference == reference)).one()


def actions(db: Database, reference: str) -> list[str]:
    with db.session() as session:
        query = select(AuditEvent.action).where(AuditEvent.object_id == reference)
        return list(session.exec(query.order_by(col(AuditEvent.id))))


def test_a_confirmed_text_over_its_limit_is_refused_and_the_draft_kept(
    db: Database, settings: Settings, staff: Staff
) -> None:
    reference = a_draft(db, settings)
    carer = staff.actor("carer")
    with pytest.raises(TextRefused) as refused:
        db.run(
            lambda s: drafts.confirm_reviewed(
                s, settings, carer, reference, text=HUNDRED_KB, category="billing"
            )
        )
    assert str(refused.value) == (
        "نص غير مقبول (text refused): complaint_case.confirmed_text has 102400 characters, "
        f"at most {COMPLAINT_TEXT}"
    )
    case = stored(db, reference)
    assert (case.status, case.confirmed_text, case.draft_text) == (
        CaseStatus.DRAFT.value,
        None,
        "الفاتورة غير صحيحة",
    )
    assert actions(db, reference) == ["case.register"]
    # At the limit it is accepted.
    at_limit = "ش" * COMPLAINT_TEXT
    db.run(
        lambda s: drafts.confirm_reviewed(
            s, settings, carer, reference, text=at_limit, category="billing"
        )
    )
    assert stored(db, reference).confirmed_text == at_limit


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("before\x00after", "holds a NUL character"),
        ("lone \ud800", "is not valid text (a lone surrogate)"),
    ],
)
def test_text_no_database_stores_alike_is_refused_on_both(
    db: Database, settings: Settings, staff: Staff, text: str, why: str
) -> None:
    admin = staff.actor("admin")
    with pytest.raises(TextRefused, match=re.escape(f"agent.display_name {why}")):
        db.run(
            lambda s: agents.add_agent(
                s, settings, admin, "nul", agents.AgentDetails(text, ("agent",))
            )
        )


def test_a_display_name_over_its_column_is_refused_on_sqlite_as_on_postgresql(
    db: Database, settings: Settings, staff: Staff
) -> None:
    admin = staff.actor("admin")
    with pytest.raises(TextRefused, match=r"agent\.display_name has 201 characters, at most 200"):
        db.run(
            lambda s: agents.add_agent(
                s, settings, admin, "long", agents.AgentDetails("ن" * 201, ("agent",))
            )
        )
    with pytest.raises(TextRefused, match=r"agent\.skills '\[0\]' has 65 characters, at most 64"):
        db.run(
            lambda s: agents.add_agent(
                s, settings, admin, "long", agents.AgentDetails("n", ("agent",), skills=("s" * 65,))
            )
        )


def resolved_case(db: Database, settings: Settings, staff: Staff) -> str:
    reference = a_draft(db, settings)
    carer = staff.actor("carer")
    db.run(
        lambda s: drafts.confirm_reviewed(
            s, settings, carer, reference, text="انقطاع", category="billing"
        )
    )

    def work_on(session: Session) -> None:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        case.status = CaseStatus.IN_PROGRESS.value
        session.add(case)

    db.run(work_on)
    db.run(lambda s: cases.resolve_case(s, settings, carer, reference, summary="أعيد الخط"))
    return reference


def test_notes_and_a_reason_over_their_limit_are_refused(
    db: Database, settings: Settings, staff: Staff
) -> None:
    reference = resolved_case(db, settings, staff)
    carer = staff.actor("carer")
    before = actions(db, reference)
    with pytest.raises(
        TextRefused, match=rf"followup\.notes has 4001 characters, at most {NOTE_TEXT}"
    ):
        db.run(
            lambda s: followups.log_followup(
                s,
                settings,
                carer,
                reference,
                method=ContactMethod.PHONE,
                result=FollowUpResult.SATISFIED,
                notes="n" * (NOTE_TEXT + 1),
            )
        )
    with db.session() as session:
        assert session.exec(select(FollowUp)).all() == []
    # An escalation's reason is kept in the audit entry only: its limit is the detail's.
    with pytest.raises(
        TextRefused, match=rf"audit_event\.detail 'reason' has {HUNDRED_KB.__len__()} characters"
    ):
        db.run(lambda s: cases.escalate_case(s, settings, carer, reference, reason=HUNDRED_KB))
    assert actions(db, reference) == before
    assert stored(db, reference).status == CaseStatus.RESOLVED.value


def test_a_row_stored_too_long_before_the_limits_can_still_change_its_other_fields(
    db: Database, settings: Settings, staff: Staff
) -> None:
    reference = resolved_case(db, settings, staff)
    with db.session() as session:  # by hand, as a row from before the limits
        table = Case.__table__  # type: ignore[attr-defined]
        session.connection().execute(
            table.update().where(table.c.reference == reference).values(confirmed_text=HUNDRED_KB)
        )
    carer = staff.actor("carer")
    db.run(
        lambda s: followups.log_followup(
            s,
            settings,
            carer,
            reference,
            method=ContactMethod.PHONE,
            result=FollowUpResult.SATISFIED,
        )
    )
    db.run(lambda s: cases.close_case(s, carer, reference))
    case = stored(db, reference)
    assert (case.status, case.confirmed_text) == (CaseStatus.CLOSED.value, HUNDRED_KB)


def test_batch_rows_are_checked_like_objects_and_machine_text_is_cut(db: Database) -> None:
    now = utcnow()
    call = {"linkedid": "1.1", "started_at": now, "hangup_cause_text": "h" * 500}
    db.run(lambda s: insert_rows(s, Call, [call]))
    with db.session() as session:
        kept = session.exec(select(Call)).one()
    assert kept.hangup_cause_text == "h" * 99 + "…"
    with pytest.raises(TextRefused, match=r"call\.uniqueid has 65 characters, at most 64"):
        db.run(lambda s: insert_rows(s, Call, [{"linkedid": "1.2", "uniqueid": "u" * 65}]))
    with db.session() as session:
        assert len(session.exec(select(Call)).all()) == 1


def test_audit_entries_written_in_a_batch_have_the_limits_of_one_written_alone(
    db: Database,
) -> None:
    with pytest.raises(TextRefused, match=r"audit_event\.detail 'note' has 102400 characters"):
        db.run(
            lambda s: audit.record_many(
                s,
                "system:test",
                [("call.store", "call", 1, {}), ("call.store", "call", 2, {"note": HUNDRED_KB})],
            )
        )
    with pytest.raises(TextRefused, match=r"audit_event\.action has 65 characters, at most 64"):
        db.run(lambda s: audit.record_many(s, "system:test", [("a" * 65, "call", 1, {})]))
    with db.session() as session:
        assert session.exec(select(AuditEvent)).all() == []


def test_a_draft_longer_than_a_complaint_is_cut_not_lost(db: Database, settings: Settings) -> None:
    reference = a_draft(db, settings, text="ك" * (COMPLAINT_TEXT + 10))
    draft = stored(db, reference).draft_text or ""
    assert len(draft) == COMPLAINT_TEXT and draft.endswith("…")


def test_a_jobs_long_error_is_cut_in_the_job_and_its_audit_entry(
    db: Database, settings: Settings
) -> None:
    message = settings.recordings.root / "message-9.wav"
    write_wav(message, seconds=1.0)

    def queued(session: Session) -> int:
        recording = ingest_recording(
            session, IVR, str(message), kind=RecordingKind.MESSAGE, root=settings.recordings.root
        )
        assert recording is not None
        job = jobs.enqueue_transcription(session, IVR, recording, utcnow())
        assert job.id is not None
        return job.id

    job_id = db.run(queued)
    policy = QueuePolicy()
    claimed = db.run(lambda s: jobs.claim_next_job(s, "w1", policy, utcnow()))
    assert claimed is not None and claimed.id == job_id
    db.run(
        lambda s: jobs.fail_job(
            s, job_id, "w1", "E" * 100_000, policy, utcnow() + timedelta(seconds=1), permanent=True
        )
    )
    with db.session() as session:
        job = session.get(TranscriptionJob, job_id)
        assert job is not None and job.last_error is not None
        assert len(job.last_error) == 2_000 and job.last_error.endswith("…")
        failed = session.exec(
            select(AuditEvent).where(AuditEvent.action == "transcription.failed")
        ).one()
        assert failed.detail["error"] == job.last_error
