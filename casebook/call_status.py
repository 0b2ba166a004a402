"""A call's status: one rule for the tracker's live calls and the stored ones. Kept apart from
``casebook.calls`` (which holds the database side) so that the AMI adapter, which must not touch
the database, can read it too."""

from __future__ import annotations

from datetime import datetime


def call_status(ended_at: datetime | None, abandoned: bool) -> str:
    """Live until it ends, then abandoned (the caller was not served) or complete."""
    if ended_at is None:
        return "live"
    return "abandoned" if abandoned else "complete"
