"""PostgreSQL advisory locks held to the end of the transaction, one site's apart from another's.

Advisory locks are database-wide, and several sites (or a site and its tests) may share one
database in schemas of their own: each lock is keyed by what it serialises and by the schema
the transaction works in (its search path, for a schema the role may not use yet), so one
site's appends, assignments or upgrades never wait on another's. SQLite needs none of this:
BEGIN IMMEDIATE already runs one writer at a time.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlmodel import Session

# What each lock serialises (any constants shared by every process of a site).
MIGRATION = 15654
CALLBACK_ASSIGNMENT = 15655
AUDIT_CHAIN = 15656
PHONE_LOOKUPS = 15657

_LOCK = text(
    "SELECT pg_advisory_xact_lock("
    ":lock, hashtext(coalesce(current_schema(), current_setting('search_path')) || '/' || :within))"
)


def lock_in_this_schema(db: Session | Connection, lock: int, within: str = "") -> None:
    """Wait for, then hold to the end of the transaction, ``lock`` of this schema (``within``:
    a finer key, such as a caller's number, for a lock per value)."""
    db.execute(_LOCK, {"lock": lock, "within": within})
