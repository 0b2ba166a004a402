"""Finding recordings and what they belong to: the case (through the recording or its call),
the agent who handled it. Shared by integrity checks, sampling, access, retention and reports."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from casebook.errors import NotFound
from casebook.models import Call, Case, Recording


@dataclass(frozen=True)
class Owner:
    """The call and case a recording belongs to, either may be unknown."""

    call: Call | None
    case: Case | None

    @property
    def reference(self) -> str | None:
        return self.case.reference if self.case is not None else None

    @property
    def agent_id(self) -> int | None:
        """The agent who handled the case: the one it is assigned to, else who confirmed it."""
        if self.case is None:
            return None
        return self.case.assigned_agent_id or self.case.confirmed_by_id


def owner_of(session: Session, recording: Recording) -> Owner:
    call = session.get(Call, recording.call_id) if recording.call_id is not None else None
    case_id = recording.case_id or (call.case_id if call is not None else None)
    case = session.get(Case, case_id) if case_id is not None else None
    return Owner(call, case)


def get_recording(session: Session, recording_id: int) -> Recording:
    recording = session.get(Recording, recording_id)
    if recording is None:
        raise NotFound(f"no recording {recording_id}")
    return recording
