"""Caller numbers are normalised before anything stores them: digits with an optional leading
+, at most phone.max_digits; what the PBX gives that is not one is stored as unknown and
audited, never lost with its call or complaint, and never called back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlmodel import Session, select

from casebook import callbacks, calls, cases
from casebook.access import Actor
from casebook.db import Database
from casebook.models import AuditEvent, Call, Callback
from casebook.phone import CallerNumber, dialable, normalise, same_number
from casebook.settings import PhoneSettings, StatusByPhoneSettings
from hotline.app.config import Settings
from tests.casebook.test_calls import START, record

LISTENER = Actor.system("listener")
IVR = Actor.system("ivr")
PHONE = PhoneSettings()
INJECTION = "0912&Local/900@premium"
HUGE = "9" * 10240


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("0910000001", "0910000001"),
        ("+218910000001", "+218910000001"),
        ("00218 91 000 0001", "00218910000001"),
        ("(091) 000-0001", "0910000001"),
        ("٠٩١٠٠٠٠٠٠١", "0910000001"),  # Arabic-Indic digits
        ("۰۹۱۰۰۰۰۰۰۱", "0910000001"),  # Eastern Arabic-Indic (Persian) digits
        ("  0910000001 ", "0910000001"),
        ("123456789012345", "123456789012345"),  # 15 digits: E.164's longest
    ],
)
def test_a_phone_number_is_stored_as_digits(given: str, stored: str) -> None:
    assert normalise(given, PHONE) == CallerNumber(stored)


@pytest.mark.parametrize("given", [None, "", "<unknown>", "<UNKNOWN>", "anonymous"])
def test_an_unknown_number_is_stored_as_unknown_and_is_no_refusal(given: str | None) -> None:
    assert normalise(given, PHONE) == CallerNumber(None)


@pytest.mark.parametrize(
    ("given", "why"),
    [
        (INJECTION, "not a phone number"),
        ("0910000001\n", "not a phone number"),  # a control character is refused, not trimmed
        ("0910\x000001", "not a phone number"),
        ("\x1b[2J0910000001", "not a phone number"),
        ("091O000001", "not a phone number"),  # a letter O
        ("++218910000001", "not a phone number"),
        ("0910+000001", "not a phone number"),
        ("1234567890123456", "16 digits (at most 15)"),
        (HUGE, "10240 digits (at most 15)"),
    ],
)
def test_anything_else_is_refused_with_the_reason(given: str, why: str) -> None:
    caller = normalise(given, PHONE)
    assert caller.number is None and why in (caller.refused or "")
    detail = caller.audit_detail()["caller_refused"]
    assert detail["length"] == len(given) and len(detail["given"]) <= 43


def test_the_length_and_the_country_come_from_the_settings() -> None:
    short = PhoneSettings(max_digits=10)
    assert normalise("0910000001", short).number == "0910000001"
    assert normalise("+218910000001", short).number is None
    egypt = PhoneSettings(country_code="20")
    assert same_number("+201001234567", "01001234567", egypt)
    assert not same_number("+201001234567", "01001234567", PHONE)
    assert same_number("00218910000001", "0910000001", PHONE)
    with pytest.raises(ValidationError):
        PhoneSettings(country_code="+218")
    with pytest.raises(ValidationError):
        PhoneSettings(max_digits=40)  # the columns hold 32 characters


def store(
    db: Database,
    linkedid: str,
    number: str | None,
    *,
    recording_path: str | None = None,
    settings: Settings | None = None,
) -> calls.StoredCall:
    def work(s: Session) -> calls.StoredCall:
        stored = record(s, settings or Settings(), linkedid, number, recording_path=recording_path)
        calls.audit_recorded(s, LISTENER, [(stored, [])])
        return stored

    return db.run(work)


def events(db: Database, action: str) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.mark.parametrize("number", [INJECTION, HUGE, "0910\x000001"])
def test_an_abandoned_call_from_a_refused_number_is_stored_and_never_called_back(
    db: Database, number: str
) -> None:
    stored = store(db, "1.1", number)
    assert stored.caller_number is None and stored.callback_id is None
    with db.session() as s:
        (call,) = s.exec(select(Call)).all()
        assert call.caller_number is None and call.abandoned
        assert s.exec(select(Callback)).all() == []
    (event,) = events(db, "call.record")
    assert event.detail["caller_refused"]["length"] == len(number)


def test_a_good_number_is_called_back_as_normalised(db: Database) -> None:
    stored = store(db, "1.1", "٠٩١ ٠٠٠ ٠٠٠١")
    assert stored.callback_id is not None
    with db.session() as s:
        (callback,) = s.exec(select(Callback)).all()
        assert callback.phone_number == "0910000001"
    (event,) = events(db, "call.record")
    assert "caller_refused" not in event.detail


def test_a_noted_call_keeps_no_refused_number(db: Database) -> None:
    note = calls.CallNote("1.1", "1.1", HUGE, "15654", START, None)
    db.run(lambda s: calls.note_calls(s, [note], PHONE))
    with db.session() as s:
        (call,) = s.exec(select(Call)).all()
        assert call.caller_number is None


def test_a_recording_path_no_column_holds_does_not_lose_the_call(db: Database) -> None:
    path = "/var/recordings/" + "x" * 2000 + ".wav"
    stored = store(db, "1.1", "0910000001", recording_path=path)
    assert stored.recording_path is None
    with db.session() as s:
        (call,) = s.exec(select(Call)).all()
        assert call.recording_path is None
    (event,) = events(db, "call.record")
    assert event.detail["recording_refused"]["length"] == len(path)


@pytest.mark.parametrize("number", [INJECTION, HUGE])
def test_a_complaint_from_a_refused_number_is_registered_without_it(
    db: Database, settings: Settings, number: str
) -> None:
    case = db.run(
        lambda s: cases.register_complaint(s, settings, IVR, caller_number=number, uniqueid="u")
    )
    assert case.reference is not None and case.caller_number is None
    (event,) = events(db, "case.register")
    assert event.detail["caller_refused"]["length"] == len(number)


def test_a_complaint_keeps_its_number_normalised(db: Database, settings: Settings) -> None:
    case = db.run(
        lambda s: cases.register_complaint(
            s, settings, IVR, caller_number="+218 91 000 0001", uniqueid="u"
        )
    )
    assert case.caller_number == "+218910000001"


def test_a_follow_up_is_never_dialled_to_a_number_stored_before_normalising(
    db: Database, settings: Settings
) -> None:
    def work(s: Session) -> Callback | None:
        case = cases.register_complaint(s, settings, IVR, caller_number=None, uniqueid="u")
        case.caller_number = INJECTION  # as an older version stored it
        s.add(case)
        s.flush()
        return callbacks.request_followup_callback(s, settings, IVR, case, START)

    assert db.run(work) is None
    (event,) = events(db, "callback.skipped")
    assert event.detail["why"] == "not a number to dial"
    assert dialable("+218910000001", PHONE) and not dialable(INJECTION, PHONE)


def test_the_status_by_phone_compares_normalised_numbers(db: Database, settings: Settings) -> None:
    case = db.run(
        lambda s: cases.register_complaint(
            s, settings, IVR, caller_number="0910000001", uniqueid="u"
        )
    )
    assert case.reference is not None
    reference = case.reference

    def ask(caller: str) -> cases.CallerStatus:
        return db.run(
            lambda s: cases.status_for_caller(
                s,
                IVR,
                reference=reference,
                caller_number=caller,
                last4=None,
                phone=PHONE,
                limits=StatusByPhoneSettings(),
            )
        )

    assert ask("+218 91 000 0001").identity_confirmed
    assert ask("٠٩١٠٠٠٠٠٠١").identity_confirmed
    assert not ask("0910000001&Local/1@x").identity_confirmed
    with db.session() as s:
        lookups = s.exec(select(AuditEvent).where(AuditEvent.action == "case.status_lookup"))
        assert [e.detail["caller"] for e in lookups] == ["+218910000001", "0910000001", None]
