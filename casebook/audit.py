"""The audit log: who did what to which object, and when.

Append-only by the database's own rule (triggers, see the first migration) and hash-chained:
each entry stores the hash of the one before it and its own hash over that link and its
content, so an entry edited or deleted behind the code's back breaks the chain at that point
(``verify_chain``). Every entry goes through ``append``: appends are serialised (an advisory
lock on PostgreSQL, the write lock BEGIN IMMEDIATE takes on SQLite) and a unique index on
``prev_hash`` makes a fork impossible even if they were not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import event as orm_events
from sqlalchemy import text
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, select

from casebook.access import Actor
from casebook.batch import execute_many
from casebook.clock import ensure_aware, utcnow
from casebook.errors import AccessDenied
from casebook.models import AuditEvent

# The link before the first entry.
GENESIS = "0" * 64
# Any constant shared by every process of the site; held to commit, so the last hash read is
# the last one committed.
_PG_AUDIT_LOCK = 15656


class Linkable(Protocol):
    """What the chain hashes of an entry: an ``AuditEvent``, or a ``_Row`` on its way in."""

    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str | None
    allowed: bool
    detail: dict[str, Any]


def entry_hash(prev_hash: str, event: Linkable) -> str:
    """sha256 over the previous link and the entry's canonical JSON. Never change this: every
    stored hash was computed with it. The id is left out: it is only known after the insert."""
    content = {
        "at": ensure_aware(event.at).astimezone(UTC).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "allowed": bool(event.allowed),
        "detail": event.detail,
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _lock_the_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK})


# The session remembers the chain's head for the rest of its transaction, so a transaction
# that appends many entries (an assignment run, a batch of calls) reads it and flushes once.
_HEAD = "audit_chain_head"


@orm_events.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, transaction: SessionTransaction) -> None:
    # A savepoint that ends may have taken entries with it (rollback): read the head again.
    if transaction.nested:
        session.info.pop(_HEAD, None)


def _head(session: Session) -> str:
    remembered = session.info.get(_HEAD)
    if remembered is not None and remembered[0] is session.get_transaction():
        return str(remembered[1])
    _lock_the_chain(session)
    # Autoflush first: an entry added earlier in this transaction is the last one.
    session.flush()
    last = session.exec(select(AuditEvent.hash).order_by(col(AuditEvent.id).desc()).limit(1))
    return last.first() or GENESIS


_PLAIN_VALUES = frozenset({str, int, float, bool, type(None)})


class _NotPlain(Exception):
    """A value JSON would give back changed (a tuple, a date, a key that is not a string)."""


def _plain_copy(value: Any) -> Any:
    """A copy of ``value`` made only of what JSON gives back unchanged, else ``_NotPlain``."""
    kind = type(value)
    if kind in _PLAIN_VALUES:
        return value
    if kind is list:
        return [_plain_copy(item) for item in value]
    if kind is dict and all(type(key) is str for key in value):
        return {key: _plain_copy(item) for key, item in value.items()}
    raise _NotPlain


def _as_stored(detail: dict[str, Any]) -> dict[str, Any]:
    """``detail`` as the JSON column will give it back, so the hash verifies after a reload.
    Most details already are (only strings, numbers, lists and dicts): copied, they skip the
    round trip through JSON."""
    try:
        copy: dict[str, Any] = _plain_copy(detail)
    except _NotPlain:
        copy = json.loads(json.dumps(detail, ensure_ascii=False, default=str))
    return copy


def append(session: Session, entry: AuditEvent) -> AuditEvent:
    """Link an unsaved entry to the end of the chain and add it. The one way in. Entries are
    inserted in the order they were added, so ids follow the chain."""
    entry.detail = _as_stored(entry.detail)
    entry.at = ensure_aware(entry.at)
    entry.prev_hash = _head(session)
    entry.hash = entry_hash(entry.prev_hash, entry)
    session.add(entry)
    session.info[_HEAD] = (session.get_transaction(), entry.hash)
    return entry


@dataclass(slots=True)
class _Row:
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str | None
    allowed: bool
    detail: dict[str, Any]
    prev_hash: str = ""
    hash: str = ""


_INSERT_ENTRY = AuditEvent.__table__.insert()  # type: ignore[attr-defined]

# (action, object_type, object_id, detail), as ``record`` takes them.
Entry = tuple[str, str, str | int | None, dict[str, Any] | None]


def record_many(session: Session, actor: Actor | str, entries: Sequence[Entry]) -> None:
    """``record`` for many entries by one actor, in order: the same entries and links, inserted
    in one statement instead of one object each (a batch of calls writes hundreds)."""
    if not entries:
        return
    who = actor if isinstance(actor, str) else actor.username
    at = utcnow()  # one moment: they are written in one transaction
    rows = [
        _Row(
            at=at,
            actor=who,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id)[:64],
            allowed=True,
            detail=_as_stored(detail or {}),
        )
        for action, object_type, object_id, detail in entries
    ]
    head = _head(session)
    session.flush()  # entries added before (``append``) go in first: ids follow the chain
    for row in rows:
        row.prev_hash = head
        row.hash = head = entry_hash(head, row)
    execute_many(
        session.connection(),
        _INSERT_ENTRY,
        [{name: getattr(row, name) for name in _Row.__slots__} for row in rows],
    )
    session.info[_HEAD] = (session.get_transaction(), head)


def record(
    session: Session,
    actor: Actor | str,
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    detail: dict[str, Any] | None = None,
    *,
    allowed: bool = True,
) -> AuditEvent:
    return append(session, _event(actor, action, object_type, object_id, detail, allowed=allowed))


def _event(
    actor: Actor | str,
    action: str,
    object_type: str,
    object_id: str | int | None,
    detail: dict[str, Any] | None,
    *,
    allowed: bool,
) -> AuditEvent:
    return AuditEvent(
        actor=actor if isinstance(actor, str) else actor.username,
        action=action,
        object_type=object_type,
        # The column is short; the full value belongs in ``detail``.
        object_id=None if object_id is None else str(object_id)[:64],
        allowed=allowed,
        detail=detail or {},
    )


def denial(
    actor: Actor | str,
    action: str,
    object_type: str,
    object_id: str | int | None,
    reason: str,
    *,
    detail: dict[str, Any] | None = None,
    error: type[AccessDenied] = AccessDenied,
) -> AccessDenied:
    """The exception to raise for a refusal; the unit of work records it (see casebook.db)."""
    event = _event(
        actor, action, object_type, object_id, {"reason": reason, **(detail or {})}, allowed=False
    )
    return error(reason, event)


def list_events(
    session: Session,
    actor: Actor,
    *,
    since: datetime | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    _require_audit_reader(actor, "audit.list")
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if since is not None:
        query = query.where(AuditEvent.at >= ensure_aware(since))
    if object_type is not None:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditEvent.object_id == object_id)
    events = list(session.exec(query))
    record(session, actor, "audit.list", "audit", None, {"rows": len(events)})
    return events


def _require_audit_reader(actor: Actor, action: str) -> None:
    if not actor.can("view_audit"):
        raise denial(actor, action, "audit", None, f"{actor.username} may not read the audit log")


@dataclass(frozen=True)
class ChainBreak:
    """The first entry where the chain does not hold."""

    event_id: int
    kind: str  # "edited": its content no longer matches its hash; "unlinked": one before it is gone
    message: str


@dataclass(frozen=True)
class ChainReport:
    entries: int
    # The last hash: written down elsewhere, it also proves later that nothing was cut off the end.
    head: str
    first_break: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


def check_chain(events: Iterable[AuditEvent]) -> ChainReport:
    """Recompute the chain over entries in id order; stop at the first break."""
    previous, count = GENESIS, 0
    for event in events:
        assert event.id is not None  # loaded rows
        count += 1
        if event.prev_hash != previous:
            message = (
                f"audit entry {event.id} does not follow the entry before it: "
                "an entry before it was deleted or edited"
            )
            return ChainReport(count, previous, ChainBreak(event.id, "unlinked", message))
        if entry_hash(previous, event) != event.hash:
            message = f"audit entry {event.id} was edited after it was written"
            return ChainReport(count, previous, ChainBreak(event.id, "edited", message))
        previous = event.hash
    return ChainReport(count, previous, None)


def verify_chain(session: Session, actor: Actor) -> ChainReport:
    """Supervisors and admins (``view_audit``) check the whole log; the check is audited."""
    _require_audit_reader(actor, "audit.verify")
    query = select(AuditEvent).order_by(col(AuditEvent.id)).execution_options(yield_per=1000)
    rows = session.exec(query)
    try:
        report = check_chain(rows)
    finally:
        rows.close()  # check_chain stops at the first break; free the cursor before writing
    broken = report.first_break
    detail = {"entries": report.entries, "intact": report.intact, "head": report.head}
    if broken is not None:
        detail |= {"break_at": broken.event_id, "kind": broken.kind}
    record(session, actor, "audit.verify", "audit", None, detail)
    return report
