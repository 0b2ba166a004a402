"""The IVR's only door to the casebook: a small protocol the casebook services implement.

The IVR never touches the database; the casebook side (or a test double) provides these two calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# Case status codes the IVR can read out; flow files must give a prompt for each.
STATUS_CODES: tuple[str, ...] = (
    "draft",
    "open",
    "in_progress",
    "resolved",
    "follow_up",
    "closed",
    "escalated",
    "rejected",
)


@dataclass(frozen=True)
class RegisteredComplaint:
    reference: str
    # Timezone-aware: the IVR says it in the hotline's business-hours zone.
    promised_by: datetime
    category: str | None
    # False when this uniqueid was already registered (an AGI retry): same case, not a new one.
    created: bool = True


@dataclass(frozen=True)
class StatusAnswer:
    found: bool
    # True when the calling number is the case's number, or the keyed last 4 digits match it.
    identity_confirmed: bool
    status: str | None = None
    promised_by: datetime | None = None
    # Not looked up: the caller's number asked too often (settings.status_by_phone).
    limited: bool = False


class IvrBackend(Protocol):
    def register_complaint(
        self,
        *,
        caller_number: str | None,
        uniqueid: str,
        linkedid: str,
        message_path: str | None,
        menu_choices: list[str],
        category: str | None,
        keypad_number: str | None = None,
    ) -> RegisteredComplaint:
        """Create the draft case at once, with the account or line number the caller keyed
        (digits) if any. Must be idempotent on ``uniqueid``."""
        ...

    def case_status(
        self, *, reference: str, caller_number: str | None, last4: str | None
    ) -> StatusAnswer:
        """Look a case up for a caller (the backend audits every lookup)."""
        ...
