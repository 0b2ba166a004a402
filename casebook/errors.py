"""Errors the casebook services raise; each message is written for the person who caused it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

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
