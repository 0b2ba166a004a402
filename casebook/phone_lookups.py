"""Status by phone, slowed (issue 17, item 5): how many times a caller number asked in the
window. Every lookup is in the audit log already (``case.status_lookup``, with the caller's
number as normalised): the count is read there, so every IVR process, on every machine,
shares it, and nothing else needs to be kept.

The caller's number stays whole in the audit entry, not masked: it is the only trace of who
was guessing references (a supervisor acts on it: the number is reported or blocked); its
readers (supervisors, admins) see callers' numbers on every case and call already; and a hash
or the last digits of a phone number hide nothing (there are too few numbers) while a keyed
hash would need a secret the audit's readers do not hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from casebook import pg_locks
from casebook.models import AuditEvent
from casebook.settings import StatusByPhoneSettings

LOOKUP = "case.status_lookup"


def lookups_in_window(
    session: Session, number: str | None, limits: StatusByPhoneSettings, now: datetime
) -> int:
    """Lookups from ``number`` (None: a withheld or refused one, all counted together) since
    ``limits.window_minutes`` before ``now``, refused ones included (a caller who keeps trying
    keeps the window full). Held to the end of the unit of work, so the lookup it decides is
    counted before another from the same number is."""
    if session.get_bind().dialect.name == "postgresql":
        pg_locks.lock_in_this_schema(session, pg_locks.PHONE_LOOKUPS, number or "")
    caller = col(AuditEvent.detail)["caller"].as_string()
    query = (
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == LOOKUP,
            col(AuditEvent.at) >= now - timedelta(minutes=limits.window_minutes),
            caller.is_(None) if number is None else caller == number,
        )
    )
    return int(session.exec(query).one())
