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
    # False when this Linkedid was stored before (a replay, a resync, a restarted listener).
    created: bool


def _case_for(session: Session, reference: str | None, linkedid: str) -> Case | None:
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
) -> StoredCall:
    existing = session.exec(select(Call).where(Call.linkedid == linkedid)).first()
    if existing is not None:
        case = session.get(Case, existing.case_id) if existing.case_id is not None else None
        return StoredCall(existing, case, created=False)
    case = _case_for(session, case_reference, linkedid)
    begin = answered_at or started_at
    duration = (ended_at - begin).total_seconds() if ended_at and begin else None
    call = Call(
        linkedid=linkedid,
        uniqueid=uniqueid,
        caller_number=caller_number,
        did=did,
        started_at=started_at,
        answered_at=answered_at,
        ended_at=ended_at,
        duration_seconds=duration,
        ivr_choices=list(ivr_choices),
        hangup_cause=hangup_cause,
        hangup_cause_text=hangup_cause_text,
        abandoned=case is None,
        case_id=case.id if case is not None else None,
    )
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
    return StoredCall(call, case, created=True)


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
