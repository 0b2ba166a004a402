"""One notion of "now" for the casebook: aware UTC, as SQLModel's UTCDateTime columns store it."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def ensure_aware(moment: datetime) -> datetime:
    """Naive values from callers are taken to be UTC; aware ones are converted to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
