from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from casebook import calls, cases
from casebook.access import Actor
from casebook.call_status import call_status
from casebook.db import Database
from casebook.errors import AccessDenied
from casebook.models import Call, Callback, CallbackReason
from hotline.app.config import Settings
from tests.conftest import Staff

LISTENER = Actor.system("listener")
START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def record(
    s: Session,
    settings: Settings,
    linkedid: str,
    number: str | None,
    *,
    reference: str | None = None,
    ivr_choices: list[str] | None = None,
    recording_path: str | None = None,
) -> calls.StoredCall:
    """A 30-second call to 15654 that ended normally, stored as the listener stores it."""
    return calls.record_call(
        s,
        settings,
        linkedid=linkedid,
        uniqueid=linkedid,
        caller_number=number,
        did="15654",
        started_at=START,
        answered_at=START + timedelta(seconds=1),
        ended_at=START + timedelta(seconds=31),
        hangup_cause=16,
        hangup_cause_text="Normal Clearing",
        case_reference=reference,
        ivr_choices=ivr_choices or [],
        recording_path=recording_path,
    )


def store(
    db: Database, linkedid: str, number: str | None, reference: str | None = None
) -> calls.StoredCall:
    return db.run(
        lambda s: record(s, Settings(), linkedid, number, reference=reference, ivr_choices=["1"])
    )


def test_a_call_is_stored_once_per_linkedid(db: Database) -> None:
    first = store(db, "1795370976.8", "0510000001")
    again = store(db, "1795370976.8", "0510000001")
    assert first.finished_now and not again.finished_now
    assert again.id == first.id
    with db.session() as s:
        (call,) = s.exec(select(Call)).all()
    assert call.duration_seconds == 30.0


def test_the_case_the_ivr_registered_is_linked(db: Database, settings: Settings) -> None:
    case = db.run(
        lambda s: cases.register_complaint(
            s,
            settings,
            Actor.system("ivr"),
            caller_number="0910000001",
            uniqueid="1.2",
            linkedid="1.1",
        )
    )
    by_reference = store(db, "9.9", "0910000001", case.reference)
    by_linkedid = store(db, "1.1", "0910000001", "HL-1.2")  # a variable that is no reference
    assert by_reference.case_id == case.id and by_reference.case_reference == case.reference
    assert by_linkedid.case_id == case.id
    assert not by_reference.abandoned


def test_an_abandoned_call_requests_one_callback_per_waiting_number(db: Database) -> None:
    first = store(db, "a.1", "0920000002")
    store(db, "a.2", "0920000002")  # called again before we called back
    store(db, "a.3", None)  # withheld number: nobody to call
    assert first.abandoned
    with db.session() as s:
        callbacks = s.exec(select(Callback)).all()
    assert [(c.phone_number, c.reason) for c in callbacks] == [
        ("0920000002", CallbackReason.ABANDONED)
    ]


def test_listing_calls_needs_a_role_that_sees_all_cases(db: Database, staff: Staff) -> None:
    store(db, "x.1", "0910000001")
    with pytest.raises(AccessDenied):
        db.run(lambda s: calls.list_calls(s, staff.actor("carer")))
    assert len(db.run(lambda s: calls.list_calls(s, staff.actor("supervisor")).items)) == 1


def test_status_by_phone_only_for_the_callers_own_case(db: Database, settings: Settings) -> None:
    case = db.run(
        lambda s: cases.register_complaint(
            s, settings, Actor.system("ivr"), caller_number="0910001234", uniqueid="u"
        )
    )
    ref = case.reference or ""

    def ask(
        number: str | None, last4: str | None = None, reference: str = ref
    ) -> cases.CallerStatus:
        return db.run(
            lambda s: cases.status_for_caller(
                s,
                Actor.system("ivr"),
                reference=reference,
                caller_number=number,
                last4=last4,
                phone=settings.phone,
                limits=settings.status_by_phone,
            )
        )

    own = ask("+218910001234")  # the same number in international form
    assert (own.identity_confirmed, own.status) == (True, "draft")
    stranger = ask("0920000000")
    assert (stranger.identity_confirmed, stranger.status, stranger.promised_by) == (
        False,
        None,
        None,
    )
    assert ask("0920000000", "1234").status == "draft"
    assert ask("0920000000", "4321").status is None
    assert ask("0920000000", "234").status is None
    assert ask("0910001234", reference="123456789").found is False
    with db.session() as s:
        from casebook.models import AuditEvent

        lookups = s.exec(select(AuditEvent).where(AuditEvent.action == "case.status_lookup")).all()
    assert [e.allowed for e in lookups] == [True, False, True, False, False, False]


def test_a_noted_call_that_vanished_during_a_gap_is_finished_once(
    db: Database, settings: Settings
) -> None:
    notes = [
        calls.CallNote(
            linkedid, linkedid, "0930000003", "15654", START, f"/rec/hotline-{linkedid}.wav"
        )
        for linkedid in ("g.1", "g.2")
    ]
    db.run(lambda s: calls.note_calls(s, notes, settings.phone))
    later = START + timedelta(minutes=5)
    closed = db.run(lambda s: calls.close_vanished_calls(s, settings, {"g.2"}, later))
    assert [c.linkedid for c in closed] == ["g.1"]
    closed = db.run(lambda s: calls.close_vanished_calls(s, settings, set(), later))
    assert [c.linkedid for c in closed] == ["g.2"]
    assert db.run(lambda s: calls.close_vanished_calls(s, settings, set(), later)) == []
    gone = {c.linkedid: c for c in (db.run(lambda s: calls.list_calls(s, LISTENER).items))}["g.1"]
    assert (gone.ended_at, gone.abandoned, gone.recording_path) == (
        later,
        True,
        "/rec/hotline-g.1.wav",
    )
    assert gone.hangup_cause_text == "ended while the listener was away"


def test_a_call_is_live_until_it_ends_then_abandoned_or_complete() -> None:
    ended = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    assert call_status(None, False) == "live"
    assert call_status(None, True) == "live"
    assert call_status(ended, True) == "abandoned"
    assert call_status(ended, False) == "complete"
