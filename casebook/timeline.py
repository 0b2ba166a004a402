"""A case's story, as people read it in `cases show`: every change with who and when, its
follow-ups, callbacks and notes, people named by their user names (never internal ids).

The history has one source of truth: the audit log. Every change of a case is written there in
the same transaction as the change (a change rolled back leaves no entry, casebook.concurrency),
with who made it and when, and the log is append-only and hash-chained (casebook.audit). A
history table of the casebook's own would be a second copy of the same facts, free to disagree
with the log; reading the log's entries for the case (indexed by object) needs none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from casebook.access import Actor
from casebook.agents import usernames
from casebook.cases import case_followups, get_case
from casebook.models import AuditEvent, Callback, Case, CaseStatus
from casebook.notes import case_notes

# The audit actions that are the case's history: its registration, every status move (each is
# audited as "case.<new status>"), its hand-overs and re-routings.
MOVES = {f"case.{status.value}": status for status in CaseStatus}
HISTORY = ("case.register", *MOVES, "case.assign", "case.reroute")
# What of an entry's detail people read in the history (the rest, such as the caller's number
# at registration, stays in the audit log).
SHOWN_DETAIL = (
    "from",
    "to",
    "reason",
    "why",
    "level",
    "category",
    "department",
    "satisfied",
    "reopened",
)


@dataclass(frozen=True)
class Step:
    """One change in the case's history."""

    at: datetime
    by: str  # a user name, or the process that made it ("system:ivr")
    action: str  # the audit action: "case.in_progress", "case.assign", ...
    status: str | None  # the status the case moved to, for a move
    detail: dict[str, Any]


@dataclass(frozen=True)
class FollowUpSeen:
    id: int
    at: datetime
    by: str | None
    method: str
    result: str
    effort_score: int | None
    notes: str | None
    rerouted_to: str | None


@dataclass(frozen=True)
class CallbackSeen:
    id: int
    reason: str
    status: str
    due_from: datetime
    attempts: int
    last_result: str | None
    assigned_to: str | None


@dataclass(frozen=True)
class NoteSeen:
    id: int
    at: datetime
    by: str | None
    text: str


@dataclass(frozen=True)
class CaseStory:
    case: Case
    assigned_to: str | None
    confirmed_by: str | None
    history: list[Step]
    followups: list[FollowUpSeen]
    callbacks: list[CallbackSeen]
    notes: list[NoteSeen]


def history(session: Session, case: Case) -> list[Step]:
    """The case's changes from the audit log, oldest first (refusals are not changes)."""
    query = (
        select(AuditEvent)
        .where(
            AuditEvent.object_type == "case",
            AuditEvent.object_id == case.reference,
            col(AuditEvent.allowed),
            col(AuditEvent.action).in_(HISTORY),
        )
        .order_by(col(AuditEvent.seq))
    )
    steps = []
    for entry in session.exec(query):
        moved_to = MOVES.get(entry.action)
        shown = {
            key: entry.detail[key] for key in SHOWN_DETAIL if entry.detail.get(key) is not None
        }
        status = moved_to.value if moved_to is not None else None
        if entry.action == "case.register":
            status = CaseStatus.DRAFT.value
        steps.append(Step(entry.at, entry.actor, entry.action, status, shown))
    return steps


def case_story(session: Session, actor: Actor, reference: str) -> CaseStory:
    """The case with its history, follow-ups, callbacks and notes, for someone concerned by it
    (the read is audited as ``case.read``)."""
    case = get_case(session, actor, reference)
    followups = case_followups(session, case)
    callbacks = list(
        session.exec(select(Callback).where(Callback.case_id == case.id).order_by(col(Callback.id)))
    )
    notes = case_notes(session, case)
    names = usernames(
        session,
        [
            case.assigned_agent_id,
            case.confirmed_by_id,
            *(item.agent_id for item in followups),
            *(item.assigned_agent_id for item in callbacks),
            *(item.author_id for item in notes),
        ],
    )

    def name(agent_id: int | None) -> str | None:
        return None if agent_id is None else names.get(agent_id)

    return CaseStory(
        case=case,
        assigned_to=name(case.assigned_agent_id),
        confirmed_by=name(case.confirmed_by_id),
        history=history(session, case),
        followups=[
            FollowUpSeen(
                item.id or 0,
                item.at,
                name(item.agent_id),
                item.method,
                item.result,
                item.effort_score,
                item.notes,
                item.rerouted_to,
            )
            for item in followups
        ],
        callbacks=[
            CallbackSeen(
                item.id or 0,
                item.reason,
                item.status,
                item.due_from,
                item.attempts,
                item.last_result,
                name(item.assigned_agent_id),
            )
            for item in callbacks
        ],
        notes=[NoteSeen(item.id or 0, item.at, name(item.author_id), item.text) for item in notes],
    )
