"""Errors the casebook services raise; each message is written for the person who caused it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from casebook.clock import utcnow

if TYPE_CHECKING:
    from sqlmodel import Session


class CasebookError(Exception):
    """Base class: a refused request with a message fit to show as is.

    ``survives_rollback``, when a service sets it, is work that must be written although the
    unit of work that raised rolls back (a failed password's counter, the refusal's audit
    entry): casebook.db runs it in a transaction of its own.
    """

    survives_rollback: Callable[[Session], object] | None = None


class NotFound(CasebookError):
    pass


class IllegalTransition(CasebookError):
    pass


class Conflict(CasebookError):
    """Another change to the same record was written first, and this one was decided on the
    record as it was before: refused whole, its audit entries with it (casebook.concurrency).

    ``subject`` names the record ("case 123456789"), ``state`` is what it is now; ``change``,
    ``by`` and ``at`` are the last change written meanwhile, as the audit log has it (None when
    the log names none). ``line(zone)`` is the message with that moment in the site's time.
    """

    def __init__(
        self,
        subject: str,
        state: str | None = None,
        *,
        change: str | None = None,
        by: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.subject = subject
        self.state = state
        self.change = change
        self.by = by
        self.at = at
        super().__init__(self.line(UTC))

    def line(self, zone: tzinfo, now: datetime | None = None) -> str:
        what = ""
        if self.change is not None:
            what = f": {self.change}"
            if self.by is not None:
                what += f" by {self.by}"
            if self.at is not None:
                what += f" at {_clock(self.at, zone, now)}"
        now_state = f" (now {self.state})" if self.state is not None else ""
        return (
            "تغيّر السجل في أثناء ذلك: أعد التحميل وحاول مجددًا. "
            f"{self.subject} changed meanwhile{what}{now_state}; reload and try again"
        )


class Taken(CasebookError):
    """A draft another agent has open (casebook.drafts): refused until they let it go, it is
    released or their lease runs out. ``line(zone)`` says who and until when, in the site's
    time."""

    def __init__(self, reference: str, holder: str, until: datetime) -> None:
        self.reference = reference
        self.holder = holder
        self.until = until
        super().__init__(self.line(UTC))

    def line(self, zone: tzinfo, now: datetime | None = None) -> str:
        until = _clock(self.until, zone, now)
        return (
            f"المسودة {self.reference} يراجعها {self.holder} حتى {until} "
            f"(draft {self.reference} is being reviewed by {self.holder} until {until})"
        )


def _clock(moment: datetime, zone: tzinfo, now: datetime | None) -> str:
    """The time alone when it is today in ``zone``, else the date too."""
    local = moment.astimezone(zone)
    today = (now or utcnow()).astimezone(zone).date()
    return local.strftime("%H:%M" if local.date() == today else "%Y-%m-%d %H:%M")


class RuleViolation(CasebookError):
    """A complaints-process rule refused the request (e.g. closing an unsatisfied case)."""


class AccessDenied(CasebookError):
    """Refused for want of a role. ``audit_event`` (an unsaved AuditEvent) is written by the unit
    of work in its own transaction, so the refusal is on record although the work rolls back."""

    def __init__(self, message: str, audit_event: object | None = None) -> None:
        super().__init__(message)
        self.audit_event = audit_event


class UnknownUser(AccessDenied):
    pass


class DatabaseUnavailable(CasebookError):
    """The database stayed locked or unreachable for the whole retry window."""
