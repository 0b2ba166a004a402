"""One winner per change: of two changes to one case or callback decided at the same moment,
one is written and the other is refused with one line naming what changed meanwhile.

How, and why this way:

- **A version on the row.** Cases and callbacks carry ``version`` (SQLAlchemy's
  ``version_id_col``, see ``models.version_column``): every UPDATE of one is ``... WHERE id =
  :id AND version = :version read`` and counts it on. This holds on SQLite and PostgreSQL alike
  and for every code path, even one that forgets the rest of this module: a change can never be
  written over one it did not see (SQLAlchemy's StaleDataError, which ``Database.run`` turns
  into ``Conflict``), so a row never mixes two changes.
- **People's changes are compare-and-set** (confirm, reject, take, renew or release a draft,
  start work, resolve, escalate, close, log a follow-up, dial a callback). A person decides on
  what they were shown, often in an earlier request (a draft shown, confirmed minutes later),
  and no database lock can span that. So the change carries the version it was decided on
  (``seen_version``; the API's ``version``), and ``claim`` compares it, then locks the row
  (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's BEGIN IMMEDIATE has already locked the
  database) and compares again with the version this transaction read. The loser of two
  concurrent changes waits for the winner's commit, finds the version moved and gets
  ``Conflict``, naming the winner's change from the audit log; its transaction rolls back whole,
  its audit entries with it, so the log never disagrees with the row. ``claim`` also marks the
  row changed, so every change counts the version on, even one that leaves the columns as they
  were (a callback dialled by the agent who already held it).
- **Lock order.** A person's change claims its row before it appends to the audit log (the
  chain's lock, casebook.audit): row, then chain, so two people's changes of one row never
  deadlock on PostgreSQL. A batch that locks rows after appending (the listener queueing
  transcriptions) may meet one the other way round; PostgreSQL breaks that deadlock and the
  unit of work runs again (``Database.run``), deciding anew.
- **Reports of what already happened are not refused** (a call attempt's result, a transcript,
  the scheduler's assignments and overdue marks, retention's deletions, a transcription job's
  lease): they read their rows ``FOR UPDATE`` (``locked``), wait for whoever holds them and
  apply to the latest state. A batch run skips rows someone else holds (SKIP LOCKED) and gets
  them on its next run.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, SQLModel, col

from casebook.errors import Conflict
from casebook.models import AuditEvent, Callback, Case

Versioned = Case | Callback
Row = TypeVar("Row", bound=SQLModel)

# The audit actions that change a record, as a person reads them in "changed meanwhile: ...".
CHANGES: dict[str, str] = {
    "case.open": "confirmed",
    "case.rejected": "rejected as not a complaint",
    "case.in_progress": "taken into work",
    "case.resolved": "resolved",
    "case.follow_up": "followed up",
    "case.escalated": "escalated",
    "case.closed": "closed",
    "case.reroute": "re-routed",
    "case.assign": "assigned",
    "followup.log": "a follow-up logged",
    "draft.take": "taken for review",
    "draft.renew": "kept under review",
    "draft.release": "released from review",
    "callback.assign": "assigned",
    "callback.overdue": "marked overdue",
    "callback.dial": "dialled",
    "callback.result": "a call result recorded",
    "agent.disable": "disabled",
    "agent.enable": "enabled",
    "agent.password_reset": "given a new password",
}


def subject(row: Versioned) -> tuple[str, str, str]:
    """(what a person calls it, audit object type, audit object id)."""
    if isinstance(row, Case):
        return f"case {row.reference}", "case", str(row.reference)
    return f"callback {row.id}", "callback", str(row.id)


def last_change(session: Session, object_type: str, object_id: str) -> AuditEvent | None:
    """The newest audit entry that changed the object (one of ``CHANGES``)."""
    query = (
        select(AuditEvent)
        .where(
            col(AuditEvent.object_type) == object_type,
            col(AuditEvent.object_id) == object_id,
            col(AuditEvent.allowed),
            col(AuditEvent.action).in_(CHANGES),
        )
        .order_by(col(AuditEvent.id).desc())
        .limit(1)
    )
    with session.no_autoflush:
        return session.execute(query).scalars().first()


def changed_meanwhile(session: Session, row: Versioned) -> Conflict:
    """The refusal for a change decided on an older version of ``row``: the row as it is now
    (this transaction's own unwritten changes to it are dropped) and its last change."""
    with session.no_autoflush:
        session.refresh(row)
    name, object_type, object_id = subject(row)
    change = last_change(session, object_type, object_id)
    if change is None:
        return Conflict(name, row.status)
    return Conflict(name, row.status, change=CHANGES[change.action], by=change.actor, at=change.at)


def check_seen(session: Session, row: Versioned, seen_version: int | None) -> None:
    """``row`` must still be the version the person was shown (``seen_version``; None: they
    were shown nothing), else ``Conflict`` naming what changed since."""
    if seen_version is not None and row.version != seen_version:
        raise changed_meanwhile(session, row)


def claim(session: Session, row: Versioned, seen_version: int | None = None) -> None:
    """Before changing ``row``: it must still be the version the change was decided on
    (``seen_version``, if given, and the version this transaction read), else ``Conflict``
    naming what changed meanwhile. The row is then locked to the end of the transaction and its
    version counts on with the change."""
    assert row.id is not None  # a stored row
    check_seen(session, row, seen_version)
    table: Any = inspect(row).mapper.local_table
    current = select(table.c.version).where(table.c.id == row.id).with_for_update()
    with session.no_autoflush:  # nothing of this change may be written before the check
        version = session.execute(current).scalar_one_or_none()
    if version != row.version:
        raise changed_meanwhile(session, row)
    if not session.is_modified(row):
        # No column changed yet (and perhaps none will): the version must count on anyway.
        flag_modified(row, "status")
    session.add(row)


def locked(session: Session, model: type[Row], row_id: int) -> Row | None:
    """``model``'s row ``row_id`` as it is now, locked to the end of the transaction (for a
    report of what already happened, applied whatever else changed)."""
    return session.get(model, row_id, with_for_update=True, populate_existing=True)
