"""The audit log: who did what to which object, and when. Append-only (see the migration)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from casebook.access import Actor
from casebook.clock import ensure_aware
from casebook.errors import AccessDenied
from casebook.models import AuditEvent


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
    event = _event(actor, action, object_type, object_id, detail, allowed=allowed)
    session.add(event)
    return event


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
) -> AccessDenied:
    """The exception to raise for a refusal; the unit of work records it (see casebook.db)."""
    event = _event(actor, action, object_type, object_id, {"reason": reason}, allowed=False)
    return AccessDenied(reason, event)


def list_events(
    session: Session,
    actor: Actor,
    *,
    since: datetime | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    if not actor.can("view_audit"):
        raise denial(
            actor, "audit.list", "audit", None, f"{actor.username} may not read the audit log"
        )
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
