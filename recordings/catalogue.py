"""Finding recordings and what they belong to: the case (through the recording or its call),
the agent who handled it. Shared by integrity checks, sampling, access, retention and reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from casebook import audit
from casebook.access import Actor
from casebook.agents import usernames
from casebook.batch import chunked
from casebook.cases import load_for
from casebook.errors import NotFound
from casebook.models import Call, Callback, Case, Recording, RecordingKind
from casebook.paging import Page, take_page


def ivr_only(recording: Recording) -> bool:
    """No agent on the line: the caller's message, recorded by the IVR alone."""
    return recording.kind == RecordingKind.MESSAGE.value


@dataclass(frozen=True)
class Owner:
    """The call and case a recording belongs to, either may be unknown; ``ivr_only``: nobody
    of the staff is heard on it."""

    call: Call | None
    case: Case | None
    ivr_only: bool = False

    @property
    def reference(self) -> str | None:
        return self.case.reference if self.case is not None else None

    @property
    def agent_id(self) -> int | None:
        """The agent heard on the recording: the one who handled its case (assigned, else who
        confirmed it); nobody for an IVR-only recording, whoever later took its case."""
        if self.case is None or self.ivr_only:
            return None
        return self.case.assigned_agent_id or self.case.confirmed_by_id


def owner_of(session: Session, recording: Recording) -> Owner:
    call = session.get(Call, recording.call_id) if recording.call_id is not None else None
    case_id = recording.case_id or (call.case_id if call is not None else None)
    case = session.get(Case, case_id) if case_id is not None else None
    return Owner(call, case, ivr_only(recording))


def get_recording(session: Session, recording_id: int) -> Recording:
    recording = session.get(Recording, recording_id)
    if recording is None:
        raise NotFound(f"no recording {recording_id}")
    return recording


def cases_with_message(session: Session, case_ids: Sequence[int]) -> set[int]:
    """Which of these cases already have the caller's own message recorded."""
    found: set[int] = set()
    for keys in chunked(case_ids):
        query = select(Recording.case_id).where(
            col(Recording.case_id).in_(keys), Recording.kind == RecordingKind.MESSAGE.value
        )
        found |= {case_id for case_id in session.exec(query) if case_id is not None}
    return found


def known_paths(session: Session) -> set[str]:
    """Every recording path the database names: stored recordings, and what calls reported
    (a file can be named by a call before, or without, being stored)."""
    known = set(session.exec(select(Recording.path)).all())
    known |= {path for path in session.exec(select(Call.recording_path)).all() if path}
    return known


def callback_case(session: Session, callback_id: int) -> int | None:
    """The case a callback's recording belongs to (None for an unknown callback or one that
    was for an abandoned call, which has no case)."""
    callback = session.get(Callback, callback_id)
    return callback.case_id if callback is not None else None


@dataclass(frozen=True)
class Listed:
    """A recording as `recordings list` shows it."""

    recording: Recording
    case_reference: str | None
    # The agent on the line (the case's, as QA attributes it); None for the caller's own
    # message, which holds no staff voice, and for calls no agent handled.
    agent: str | None


def _of_case(case_ids: list[int | None] | SelectOfScalar[int | None]) -> ColumnElement[bool]:
    """Recordings of these cases: tied to one directly, or through its call."""
    calls = select(Call.id).where(col(Call.case_id).in_(case_ids))
    return or_(col(Recording.case_id).in_(case_ids), col(Recording.call_id).in_(calls))


def list_recordings(
    session: Session, actor: Actor, *, reference: str | None = None, limit: int | None = 100
) -> Page[Listed]:
    """The recordings the actor may hear (``Actor.may_play``: the same rule as playing), newest
    first; with ``reference``, that case's (the actor must be concerned by the case). The
    listing is audited with the recordings shown."""
    query = select(Recording).order_by(col(Recording.created_at).desc(), col(Recording.id).desc())
    case_reference = None
    if reference is not None:
        case = load_for(session, actor, reference, "recording.list")
        case_reference = case.reference
        query = query.where(_of_case([case.id]))
    if not actor.can("play_recordings"):
        # Narrowed in SQL to the actor's own cases; may_play below is the rule itself.
        if actor.agent_id is None:
            return Page([])
        query = query.where(
            _of_case(select(col(Case.id)).where(Case.assigned_agent_id == actor.agent_id))
        )
    # The SQL above narrows to what may_play allows, so the count of the rest is of recordings
    # the actor may hear; may_play below is the rule itself, checked on every one shown.
    page = take_page(session, query, limit)
    shown: list[tuple[Recording, Owner]] = []
    for recording in page.items:
        owner = owner_of(session, recording)
        if actor.may_play(owner.case):
            shown.append((recording, owner))
    names = usernames(session, [owner.agent_id for _, owner in shown])
    listed = [
        Listed(
            recording,
            owner.reference,
            None
            if recording.kind == RecordingKind.MESSAGE.value
            else names.get(owner.agent_id or 0),
        )
        for recording, owner in shown
    ]
    audit.record(
        session,
        actor,
        "recording.list",
        "recording",
        None,
        {
            "case": case_reference,
            "recordings": [item.recording.id for item in listed],
            "limit": limit,
        },
    )
    return Page(listed, page.more, page.more_exact)
