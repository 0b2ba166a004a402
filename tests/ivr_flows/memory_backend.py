"""An in-memory IvrBackend for the IVR tests (the casebook provides the real one)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from casebook.reference import reference_for_id
from ivr_flows.backend import RegisteredComplaint, StatusAnswer

PROMISE = timedelta(days=3)
# The memory site's reference key (a real site's is random, in its secrets folder).
REFERENCE_KEY = bytes(range(32))


@dataclass
class MemoryCase:
    reference: str
    uniqueid: str
    linkedid: str
    caller_number: str | None
    message_path: str | None
    menu_choices: list[str]
    category: str
    promised_by: datetime
    status: str = "draft"
    keypad_number: str | None = None


@dataclass
class MemoryBackend:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    cases: dict[str, MemoryCase] = field(default_factory=dict)
    lookups: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
        with self._lock:
            existing = self.case_for_uniqueid(uniqueid)
            if existing is not None:
                return RegisteredComplaint(
                    existing.reference, existing.promised_by, existing.category, created=False
                )
            case = MemoryCase(
                reference=reference_for_id(len(self.cases) + 1, REFERENCE_KEY),
                uniqueid=uniqueid,
                linkedid=linkedid,
                caller_number=caller_number,
                message_path=message_path,
                menu_choices=menu_choices,
                category=category or "other",
                promised_by=self.now + PROMISE,
                keypad_number=keypad_number,
            )
            self.cases[case.reference] = case
            return RegisteredComplaint(case.reference, case.promised_by, case.category)

    def case_status(
        self, *, reference: str, caller_number: str | None, last4: str | None
    ) -> StatusAnswer:
        with self._lock:
            self.lookups.append((reference, caller_number, last4))
            case = self.cases.get(reference)
        if case is None:
            return StatusAnswer(found=False, identity_confirmed=False)
        number = case.caller_number or ""
        confirmed = bool(number) and (
            caller_number == number or (last4 is not None and number.endswith(last4))
        )
        # Deliberately answers in full either way: the IVR must be the one keeping the secret.
        return StatusAnswer(True, confirmed, case.status, case.promised_by)

    # -- what the tests inspect (a real-backend adapter provides the same two) -------------

    def case_for_uniqueid(self, uniqueid: str) -> MemoryCase | None:
        return next((c for c in self.cases.values() if c.uniqueid == uniqueid), None)

    def case_count(self) -> int:
        return len(self.cases)
