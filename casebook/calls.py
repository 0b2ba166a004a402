from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.callbacks import request_abandoned_callbacks
from casebook.db import chunked, insert_rows
from casebook.models import Call, Case
from casebook.reference import InvalidReference, normalise_reference
from hotline.config import Settings


@dataclass(frozen=True)
class StoredCall:
    call: Call
    case: Case | None
    # False when this Linkedid was finished before (a replay, a resync, a restarted listener).
    finished_now: bool


@dataclass(frozen=True)
class CallNote:
    """A call in progress, as far as it is known."""

    linkedid: str
    uniqueid: str | None
    caller_number: str | None
    did: str | None
    started_at: datetime
    recording_path: str | None


@dataclass(frozen=True)
class CallFacts:
    """A finished call, as the listener saw it."""

    linkedid: str
    uniqueid: str | None
    caller_number: str | None
    did: str | None
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_cause: int | None
    hangup_cause_text: str | None
    case_reference: str | None
    ivr_choices: Sequence[str]
    recording_path: str | None


def _calls_by_linkedid(session: Session, linkedids: Iterable[str]) -> dict[str, Call]:
    found: dict[str, Call] = {}
    for keys in chunked(linkedids):
        found |= {
            c.linkedid: c for c in session.exec(select(Call).where(col(Call.linkedid).in_(keys)))
        }
    return found


def _canonical(reference: str | None) -> str | None:
    if not reference:
        return None
    try:
        return normalise_reference(reference)
    except InvalidReference:
        return None


def _cases_for(session: Session, facts: Sequence[CallFacts]) -> list[Case | None]:
    """The case the IVR registered for each call: by the reference it set on the channel, else
    by Linkedid (the first such case)."""
    references = [_canonical(f.case_reference) for f in facts]
    by_reference: dict[str, Case] = {}
    for keys in chunked(r for r in references if r is not None):
        query = select(Case).where(col(Case.reference).in_(keys))
        by_reference |= {case.reference or "": case for case in session.exec(query)}
    by_linkedid: dict[str, Case] = {}
    for keys in chunked(f.linkedid for f in facts):
        query = select(Case).where(col(Case.call_linkedid).in_(keys)).order_by(col(Case.id))
        for case in session.exec(query):
            by_linkedid.setdefault(case.call_linkedid or "", case)
    return [
        (by_reference.get(reference) if reference is not None else None)
        or by_linkedid.get(f.linkedid)
        for f, reference in zip(facts, references, strict=True)
    ]


def note_calls(session: Session, notes: Sequence[CallNote]) -> list[Call]:
    """Note calls in progress (when one reaches the hotline, again when its recording is
    named), so a call that ends while no listener is connected is still known and finished by
    ``close_vanished_calls``. Idempotent on Linkedid; a finished call is left alone."""
    if not notes:
        return []
    session.flush()  # anything added before is seen by the lookup below
    with session.no_autoflush:
        known = _calls_by_linkedid(session, (n.linkedid for n in notes))
    new: dict[str, dict[str, Any]] = {}  # calls first heard of here, inserted in one go
    for note in notes:
        call = known.get(note.linkedid)
        if call is not None and call.ended_at is not None:
            continue
        row = new.setdefault(note.linkedid, {}) if call is None else None
        if row is not None and not row:
            row |= {"linkedid": note.linkedid, "started_at": note.started_at}
        for name in ("uniqueid", "caller_number", "did", "recording_path"):
            value = getattr(note, name)
            if row is not None:
                row[name] = value or row.get(name)
            elif value:
                setattr(call, name, value)
    if new:
        insert_rows(session, Call, list(new.values()))
        known |= _calls_by_linkedid(session, new)
    session.flush()
    return [known[note.linkedid] for note in notes]


def record_calls(
    session: Session, settings: Settings, actor: Actor, facts: Sequence[CallFacts]
) -> list[StoredCall]:
    """Finish calls, in order: their facts, their case, abandoned or not. Once per Linkedid
    (the same Linkedid twice in ``facts`` is finished by the first)."""
    if not facts:
        return []
    session.flush()  # anything added before is seen by the lookups below
    stored: list[StoredCall] = []
    with session.no_autoflush:
        known = _calls_by_linkedid(session, (f.linkedid for f in facts))
        for fact, case in zip(facts, _cases_for(session, facts), strict=True):
            call = known.get(fact.linkedid)
            if call is not None and call.ended_at is not None:
                linked = session.get(Case, call.case_id) if call.case_id is not None else None
                stored.append(StoredCall(call, linked, finished_now=False))
                continue
            if call is None:
                # First heard of at its end: all calls first heard of here go in at once.
                unheard = list(dict.fromkeys(f.linkedid for f in facts if f.linkedid not in known))
                insert_rows(session, Call, [{"linkedid": linkedid} for linkedid in unheard])
                known |= _calls_by_linkedid(session, unheard)
                call = known[fact.linkedid]
            _finish(call, fact, case)
            stored.append(StoredCall(call, case, finished_now=True))
    session.flush()
    finished = [s for s in stored if s.finished_now]
    callbacks = request_abandoned_callbacks(session, settings, [s.call for s in finished])
    entries: list[audit.Entry] = []
    for entry, callback in zip(finished, callbacks, strict=True):
        call, case = entry.call, entry.case
        detail = {"case": case.reference if case else None, "abandoned": call.abandoned}
        entries.append(("call.record", "call", call.linkedid, detail))
        if callback is not None:
            detail = {
                "about": call.linkedid,
                "reason": callback["reason"],
                "due_from": callback["due_from"].isoformat(),
            }
            entries.append(("callback.request", "callback", callback["id"], detail))
    audit.record_many(session, actor, entries)
    return stored


def _finish(call: Call, fact: CallFacts, case: Case | None) -> None:
    begin = fact.answered_at or fact.started_at or call.started_at
    ended_at = fact.ended_at
    call.uniqueid = fact.uniqueid or call.uniqueid
    call.caller_number = fact.caller_number or call.caller_number
    call.did = fact.did or call.did
    call.recording_path = fact.recording_path or call.recording_path
    call.started_at = call.started_at or fact.started_at
    call.answered_at = fact.answered_at
    call.ended_at = ended_at
    call.duration_seconds = (ended_at - begin).total_seconds() if ended_at and begin else None
    call.ivr_choices = list(fact.ivr_choices)
    call.hangup_cause = fact.hangup_cause
    call.hangup_cause_text = fact.hangup_cause_text
    call.abandoned = case is None
    call.case_id = case.id if case is not None else None


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
    """Finish one call: see ``record_calls``."""
    fact = CallFacts(
        linkedid=linkedid,
        uniqueid=uniqueid,
        caller_number=caller_number,
        did=did,
        started_at=started_at,
        answered_at=answered_at,
        ended_at=ended_at,
        hangup_cause=hangup_cause,
        hangup_cause_text=hangup_cause_text,
        case_reference=case_reference,
        ivr_choices=ivr_choices,
        recording_path=recording_path,
    )
    return record_calls(session, settings, actor, [fact])[0]


def close_vanished_calls(
    session: Session, settings: Settings, actor: Actor, alive: set[str], now: datetime
) -> list[StoredCall]:
    """Calls noted as started but no longer alive on the PBX ended while no listener heard
    their hang-up: finish them now, with what is known."""
    open_calls = session.exec(select(Call).where(col(Call.ended_at).is_(None))).all()
    facts = [
        CallFacts(
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
    return record_calls(session, settings, actor, facts)


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
