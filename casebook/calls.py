from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Table, bindparam, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.batch import chunked, execute_many, ids_by, insert_rows, with_defaults
from casebook.callbacks import request_abandoned_callbacks
from casebook.limits import check_row
from casebook.models import Call, Case
from casebook.paging import Page, take_page
from casebook.phone import normalise
from casebook.reference import InvalidReference, normalise_reference
from casebook.settings import CasebookConfig, PhoneSettings

# The listener writes calls in batches of hundreds under load; these paths use the tables
# directly (one statement per step, no ORM object per row), which the ingest bench measures.
_CALLS: Table = Call.__table__  # type: ignore[attr-defined]
_CASES: Table = Case.__table__  # type: ignore[attr-defined]
_FINISH = _CALLS.update().where(_CALLS.c.id == bindparam("call_id"))


@dataclass(frozen=True)
class StoredCall:
    """A finished call as stored: what its recordings, its callback and the audit log need."""

    id: int
    linkedid: str
    caller_number: str | None
    ended_at: datetime | None
    recording_path: str | None
    abandoned: bool
    case_id: int | None
    # The case's reference; None for a call finished before (only its case id is looked up).
    case_reference: str | None
    # False when this Linkedid was finished before (a replay, a resync, a restarted listener).
    finished_now: bool
    # The callback its abandonment asked for, when it asked for one now.
    callback_id: int | None = None
    # What the PBX gave that was not stored (a caller number casebook.phone refused, a
    # recording path no column holds), for the audit log.
    refused: Mapping[str, Any] = field(default_factory=dict)


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
    # The caller was served without a case (a status enquiry answered, an agent reached):
    # not abandoned. A call with a case is served anyway.
    served: bool = False


def _calls_by_linkedid(session: Session, linkedids: Iterable[str]) -> dict[str, Mapping[str, Any]]:
    columns = _CALLS.c
    found: dict[str, Mapping[str, Any]] = {}
    for keys in chunked(linkedids):
        query = sa.select(
            columns.id,
            columns.linkedid,
            columns.uniqueid,
            columns.caller_number,
            columns.did,
            columns.started_at,
            columns.ended_at,
            columns.recording_path,
            columns.case_id,
            columns.abandoned,
        ).where(columns.linkedid.in_(keys))
        found |= {row["linkedid"]: row for row in session.connection().execute(query).mappings()}
    return found


def _canonical(reference: str | None) -> str | None:
    if not reference:
        return None
    try:
        return normalise_reference(reference)
    except InvalidReference:
        return None


@dataclass(frozen=True)
class _CaseRef:
    id: int
    reference: str | None


def _cases_for(session: Session, facts: Sequence[CallFacts]) -> list[_CaseRef | None]:
    """The case the IVR registered for each call: by the reference it set on the channel, else
    by Linkedid (the first such case)."""
    columns = _CASES.c
    connection = session.connection()
    references = [_canonical(f.case_reference) for f in facts]
    by_reference: dict[str, _CaseRef] = {}
    for keys in chunked(r for r in references if r is not None):
        query = sa.select(columns.id, columns.reference).where(columns.reference.in_(keys))
        by_reference |= {
            row.reference: _CaseRef(row.id, row.reference) for row in connection.execute(query)
        }
    by_linkedid: dict[str, _CaseRef] = {}
    for keys in chunked(f.linkedid for f in facts):
        query = (
            sa.select(columns.id, columns.reference, columns.call_linkedid)
            .where(columns.call_linkedid.in_(keys))
            .order_by(columns.id)
        )
        for row in connection.execute(query):
            by_linkedid.setdefault(row.call_linkedid, _CaseRef(row.id, row.reference))
    return [
        (by_reference.get(reference) if reference is not None else None)
        or by_linkedid.get(f.linkedid)
        for f, reference in zip(facts, references, strict=True)
    ]


# What a note may fill in on a call in progress (a finished call is left alone).
_NOTED = ("uniqueid", "caller_number", "did", "recording_path")


def note_calls(session: Session, notes: Sequence[CallNote], phone: PhoneSettings) -> None:
    """Note calls in progress (when one reaches the hotline, again when its recording is
    named), so a call that ends while no listener is connected is still known and finished by
    ``close_vanished_calls``. Idempotent on Linkedid; a finished call is left alone. A caller
    number is noted only as ``phone`` (settings.phone) allows:
    a refused one is audited when the call is finished."""
    if not notes:
        return
    rows: dict[str, dict[str, Any]] = {}  # one row per call: an upsert touches a row once
    for note in notes:
        row = rows.setdefault(note.linkedid, {"linkedid": note.linkedid})
        row.setdefault("started_at", note.started_at)
        for name in _NOTED:
            row[name] = getattr(note, name) or row.get(name)
        row["caller_number"] = normalise(row["caller_number"], phone).number
        # A path no column holds is left out (the call's finish audits it), not the note.
        _keep_path(row)
    session.flush()  # what was added before goes in first
    statement = _note_statement(session.get_bind().dialect.name)
    execute_many(
        session.connection(), statement, [with_defaults(Call, row) for row in rows.values()]
    )


@cache
def _note_statement(dialect: str) -> sqlite.Insert | postgresql.Insert:
    """Insert a noted call, or fill in what its row does not know yet while it is open (both
    databases spell the upsert alike; built once, it runs for every batch)."""
    upsert = postgresql.insert(_CALLS) if dialect == "postgresql" else sqlite.insert(_CALLS)
    return upsert.on_conflict_do_update(
        index_elements=[_CALLS.c.linkedid],
        # What a note does not know (None) keeps what the row has.
        set_={name: func.coalesce(upsert.excluded[name], _CALLS.c[name]) for name in _NOTED},
        where=_CALLS.c.ended_at.is_(None),
    )


def record_calls(
    session: Session, settings: CasebookConfig, facts: Sequence[CallFacts]
) -> list[StoredCall]:
    """Finish calls, in order: their facts, their case, abandoned or not (then a callback is
    asked for). Once per Linkedid (the same Linkedid twice in ``facts`` is finished by the
    first). The caller audits what it stored with ``audit_recorded``."""
    if not facts:
        return []
    session.flush()  # anything added before is seen by the lookups below
    known = _calls_by_linkedid(session, (f.linkedid for f in facts))
    finishing: dict[str, dict[str, Any]] = {}  # linkedid -> the finished row's values
    refused: dict[str, dict[str, Any]] = {}
    cases: dict[str, _CaseRef | None] = {}
    for fact, case in zip(facts, _cases_for(session, facts), strict=True):
        row = known.get(fact.linkedid)
        if fact.linkedid in finishing or (row is not None and row["ended_at"] is not None):
            continue
        noted = row["caller_number"] if row is not None else None
        caller = normalise(fact.caller_number or noted, settings.phone)
        values = _finished_row(fact, case, row, caller.number)
        refused[fact.linkedid] = caller.audit_detail() | _keep_path(values)
        # The rows of calls noted before are updated, not inserted: checked here as inserts are.
        finishing[fact.linkedid] = check_row(Call, values)
        cases[fact.linkedid] = case
    new = [values for linkedid, values in finishing.items() if linkedid not in known]
    changed = [
        values | {"call_id": known[linkedid]["id"]}
        for linkedid, values in finishing.items()
        if linkedid in known
    ]
    if new:
        insert_rows(session, Call, new)
        ids = ids_by(session.connection(), _CALLS.c.linkedid, (row["linkedid"] for row in new))
        known |= {row["linkedid"]: row | {"id": ids[row["linkedid"]]} for row in new}
    # Every column in the rows is set; ``call_id`` only picks the row.
    execute_many(session.connection(), _FINISH, changed)
    stored = [
        # pop: only the first of a Linkedid given twice is finished now
        _stored(known[f.linkedid], finishing.pop(f.linkedid, None), cases.get(f.linkedid))
        for f in facts
    ]
    finished = [s for s in stored if s.finished_now]
    callbacks = request_abandoned_callbacks(session, settings, finished)
    asked = {
        call.id: callback["id"]
        for call, callback in zip(finished, callbacks, strict=True)
        if callback
    }
    return [
        replace(s, callback_id=asked.get(s.id), refused=refused[s.linkedid])
        if s.finished_now
        else s
        for s in stored
    ]


# The column's length; a NUL byte no PostgreSQL text holds.
_PATH_LENGTH = Call.__table__.c.recording_path.type.length  # type: ignore[attr-defined]


def _keep_path(values: dict[str, Any]) -> dict[str, Any]:
    """A recording path the database cannot hold is not stored (which would lose the call):
    None in the row, and what it was for the audit log."""
    path = values["recording_path"]
    if path is None or (len(path) <= _PATH_LENGTH and "\0" not in path):
        return {}
    values["recording_path"] = None
    return {"recording_refused": {"given": path[:200], "length": len(path)}}


def _finished_row(
    fact: CallFacts, case: _CaseRef | None, row: Mapping[str, Any] | None, caller: str | None
) -> dict[str, Any]:
    """The call's columns once finished: the facts, completed by what its notes stored, with
    ``caller``, the caller number as normalised."""

    def noted(name: str) -> Any:
        return row[name] if row is not None else None

    started_at = noted("started_at") or fact.started_at
    begin = fact.answered_at or fact.started_at or started_at
    ended_at = fact.ended_at
    return {
        "linkedid": fact.linkedid,
        "uniqueid": fact.uniqueid or noted("uniqueid"),
        "caller_number": caller,
        "did": fact.did or noted("did"),
        "recording_path": fact.recording_path or noted("recording_path"),
        "started_at": started_at,
        "answered_at": fact.answered_at,
        "ended_at": ended_at,
        "duration_seconds": (ended_at - begin).total_seconds() if ended_at and begin else None,
        "ivr_choices": list(fact.ivr_choices),
        "hangup_cause": fact.hangup_cause,
        "hangup_cause_text": fact.hangup_cause_text,
        "abandoned": case is None and not fact.served,
        "case_id": case.id if case is not None else None,
    }


def _stored(
    row: Mapping[str, Any], values: dict[str, Any] | None, case: _CaseRef | None
) -> StoredCall:
    """``values``: the call's row as finished now; None when it was finished before."""
    finished = values if values is not None else row
    return StoredCall(
        id=row["id"],
        linkedid=row["linkedid"],
        caller_number=finished["caller_number"],
        ended_at=finished["ended_at"],
        recording_path=finished["recording_path"],
        abandoned=finished["abandoned"],
        case_id=finished["case_id"],
        case_reference=case.reference if values is not None and case is not None else None,
        finished_now=values is not None,
    )


def audit_recorded(
    session: Session,
    actor: Actor,
    recorded: Sequence[tuple[StoredCall, Sequence[dict[str, Any]]]],
) -> None:
    """One entry per call finished now, with all that was stored for it: its case, or the
    callback its abandonment asked for, and its recordings (as their ingest describes them).
    One entry, not one per row: the listener stores hundreds of calls a minute at peak."""
    entries: list[audit.Entry] = [
        (
            "call.record",
            "call",
            call.linkedid,
            {
                "case": call.case_reference,
                "abandoned": call.abandoned,
                "callback": call.callback_id,
                "recordings": list(recordings),
                **call.refused,
            },
        )
        for call, recordings in recorded
        if call.finished_now
    ]
    audit.record_many(session, actor, entries)


def record_call(
    session: Session,
    settings: CasebookConfig,
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
    served: bool = False,
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
        served=served,
    )
    return record_calls(session, settings, [fact])[0]


def recover_call(
    session: Session,
    settings: CasebookConfig,
    *,
    linkedid: str | None,
    uniqueid: str,
    did: str | None,
    ended_at: datetime,
    recording_path: str,
) -> StoredCall:
    """A call known only from its recording (it ended while no listener heard it): stored under
    its Linkedid (named by the recording, else by the case, else the channel's Uniqueid), with
    the case the IVR registered for its channel and that case's caller number; what a note of
    the call stored before (its caller number) completes it."""
    query = select(Case).where(Case.call_uniqueid == uniqueid)
    case = session.exec(query).first()
    if case is None and linkedid is not None:
        query = select(Case).where(Case.call_linkedid == linkedid).order_by(col(Case.id))
        case = session.exec(query).first()
    return record_call(
        session,
        settings,
        linkedid=linkedid or (case.call_linkedid if case is not None else None) or uniqueid,
        uniqueid=uniqueid,
        caller_number=case.caller_number if case is not None else None,
        did=did,
        started_at=None,
        answered_at=None,
        ended_at=ended_at,
        hangup_cause=None,
        hangup_cause_text="recovered from the recording after a listener gap",
        case_reference=case.reference if case is not None else None,
        ivr_choices=(),
        recording_path=recording_path,
    )


def close_vanished_calls(
    session: Session, settings: CasebookConfig, alive: set[str], now: datetime
) -> list[StoredCall]:
    """Calls noted as started but no longer alive on the PBX ended while no listener heard
    their hang-up: finish them now, with what is known."""
    session.flush()
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
    return record_calls(session, settings, facts)


def list_calls(session: Session, actor: Actor, *, limit: int | None = 50) -> Page[Call]:
    """Recent calls, newest first; caller numbers are personal data, so staff who see all cases
    see all calls and the listing is audited."""
    if not (actor.is_system or actor.can("see_all_cases")):
        raise audit.denial(actor, "call.list", "call", None, f"{actor.username} may not list calls")
    page = take_page(
        session, select(Call).order_by(col(Call.ended_at).desc(), col(Call.id).desc()), limit
    )
    audit.record(session, actor, "call.list", "call", None, {"rows": len(page.items)})
    return page


def case_reference(session: Session, call: Call) -> str | None:
    """The reference of the case a listed call belongs to (the listing was audited)."""
    case = session.get(Case, call.case_id) if call.case_id is not None else None
    return case.reference if case is not None else None
