"""Internal notes on a case: what an agent or a supervisor wants the next person to know (never
told to the caller). Notes are added, never edited or removed; whoever may see the case may add
one and read them.

A note is not a change of the case (its status, holder and version stay as they were), so it is
not compare-and-set: two people may add notes at the same moment and both are kept.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.cases import load_for, moment_or_now
from casebook.errors import RuleViolation
from casebook.models import Case, CaseNote


def add_note(
    session: Session, actor: Actor, reference: str, *, text: str, now: datetime | None = None
) -> CaseNote:
    """A note on the case, by the actor; its length is bounded (casebook.limits). Audited
    with the note's id and length, not its text (the note is kept in its own table)."""
    case = load_for(session, actor, reference, "case.note")
    if not text.strip():
        raise RuleViolation("the note is empty")
    assert case.id is not None  # a stored case
    note = CaseNote(
        case_id=case.id, author_id=actor.agent_id, at=moment_or_now(now), text=text.strip()
    )
    session.add(note)
    session.flush()
    audit.record(
        session,
        actor,
        "case.note",
        "case",
        case.reference,
        {"note": note.id, "chars": len(note.text)},
    )
    return note


def case_notes(session: Session, case: Case) -> list[CaseNote]:
    """The notes of a case already read through ``cases.get_case`` (that read was audited),
    oldest first."""
    query = (
        select(CaseNote)
        .where(CaseNote.case_id == case.id)
        .order_by(col(CaseNote.at), col(CaseNote.id))
    )
    return list(session.exec(query))
