"""Calls to the hotline as the AMI listener saw them: stored once per Asterisk Linkedid, linked
to the case the IVR registered; a call that ended before a complaint was registered is an
abandoned call, and when the number is known the customer is called back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.callbacks import request_abandoned_callback
from casebook.models import Call, Case
from casebook.reference import InvalidReference, normalise_reference
from hotline.config import Settings


@dataclass(frozen=True)
class StoredCall:
    call: Call
    case: Case | None
    # False when this Linkedid was finished before (a replay, a resync, a restarted listener).
    finished_now: bool


def _case_for(session: Session, reference: str | None, linkedid: str) -> Case | None:
    """The case the IVR registered: by the reference it set on the channel, else by Linkedid."""
    if reference:
        try:
            canonical = normalise_reference(reference)
        except InvalidReference:
            canonical = None
        if canonical is not None:
            case = session.exec(select(Case).where(Case.reference == canonical)).first()
            if case is not None:
                return case
    return session.exec(select(Case).where(Case.call_linkedid == linkedid)).first()


def note_call(
    session: Session,
    *,
    linkedid: str,
    uniqueid: str | None,
    caller_number: str | None,
    did: str | None,
    started_at: datetime,
    recording_path: str | None,
) -> Call:
    """Note a call in progress (when it reaches the hotline, again when its recording is
    named), so a call that ends while no listener is connected is still known and finished by
    ``close_vanished_calls``. Idempotent on Linkedid; a finished call is left alone."""
    call = session.exec(select(Call).where(Call.linkedid == linkedid)).first()
    if call is None:
        call = Call(linkedid=linkedid, started_at=started_at)
    elif call.ended_at is not None:
        return call
    call.uniqueid = uniqueid or call.uniqueid
    call.caller_number = caller_number or call.caller_number
    call.did = did or call.did
    call.recording_path = recording_path or call.recording_path
    session.add(call)
    session.flush()
    return call


def record_call(
    session: Session,
    settings: Settings,
    actor: Actor,
    *,
    linkedid: str,
    uniqueid: str | None,
    caller_number: str | None,
    did: str | None,
    started_at: datetime | None,
    answered_at: datetime | None,
    ended_at: datetime | None,
    hangup_cause: int | None,
    hangup_cause_text: str | None,
    case_reference: str | None,
    ivr_choices: Sequence[str],
    recording_path: str | None,
) -> StoredCall:
    """Finish the call: its facts, its case, abandoned or not. Once per Linkedid."""
    call = session.exec(select(Call).where(Call.linkedid == linkedid)).first()
    if call is not None and call.ended_at is not None:
        case = session.get(Case, call.case_id) if call.case_id is not None else None
        return StoredCall(call, case, finished_now=False)
    call = call or Call(linkedid=linkedid)
    case = _case_for(session, case_reference, linkedid)
    begin = answered_at or started_at or call.started_at
    call.uniqueid = uniqueid or call.uniqueid
    call.caller_number = caller_number or call.caller_number
    call.did = did or call.did
    call.recording_path = recording_path or call.recording_path
    call.started_at = call.started_at or started_at
    call.answered_at = answered_at
    call.ended_at = ended_at
    call.duration_seconds = (ended_at - begin).total_seconds() if ended_at and begin else None
    call.ivr_choices = list(ivr_choices)
    call.hangup_cause = hangup_cause
    call.hangup_cause_text = hangup_cause_text
    call.abandoned = case is None
    call.case_id = case.id if case is not None else None
    session.add(call)
    session.flush()
    audit.record(
        session,
        actor,
        "call.record",
        "call",
        linkedid,
        {"case": case.reference if case else None, "abandoned": call.abandoned},
    )
    if call.abandoned and ended_at is not None:
        request_abandoned_callback(session, settings, actor, call, ended_at)
    return StoredCall(call, case, finished_now=True)


def close_vanished_calls(
    session: Session, settings: Settings, actor: Actor, alive: set[str], now: datetime
) -> list[StoredCall]:
    """Calls noted as started but no longer alive on the PBX ended while no listener heard
    their hang-up: finish them now, with what is known."""
    open_calls = session.exec(select(Call).where(col(Call.ended_at).is_(None))).all()
    return [
        record_call(
            session,
            settings,
            actor,
            linkedid=call.linkedid,
            uniqueid=call.uniqueid,
            caller_number=call.caller_number,
            did=call.did,
            started_at=call.started_at,
            answered_at=None,
            ended_at=now,
            hangup_cause=None,
            hangup_cause_text="ended while the listener was away",
            case_reference=None,
            ivr_choices=call.ivr_choices,
            recording_path=call.recording_path,
        )
        for call in open_calls
        if call.linkedid not in alive
    ]


def list_calls(session: Session, actor: Actor, *, limit: int = 50) -> list[Call]:
    """Recent calls, newest first; caller numbers are personal data, so staff who see all cases
    see all calls and the listing is audited."""
    if not (actor.is_system or actor.can("see_all_cases")):
        raise audit.denial(actor, "call.list", "call", None, f"{actor.username} may not list calls")
    calls = list(
        session.exec(
            select(Call).order_by(col(Call.ended_at).desc(), col(Call.id).desc()).limit(limit)
        )
    )
    audit.record(session, actor, "call.list", "call", None, {"rows": len(calls)})
    return calls


def case_reference(session: Session, call: Call) -> str | None:
    """The reference of the case a listed call belongs to (the listing was audited)."""
    case = session.get(Case, call.case_id) if call.case_id is not None else None
    return case.reference if case is not None else None
