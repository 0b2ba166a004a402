"""The agent's queue of drafts: complaints registered by the IVR, transcribed, waiting for a
person to confirm what the caller said. Opening a draft takes it, so two agents never work the
same one: taking is a change of the case, claimed like any (casebook.concurrency), so of two
agents opening an untaken draft at once one takes it and the other is told who did."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.cases import confirm_draft, load_for, moment_or_now
from casebook.concurrency import check_seen, claim
from casebook.errors import RuleViolation
from casebook.models import Case, CaseStatus, Priority, Recording, RecordingKind, Transcript
from casebook.settings import CasebookConfig


@dataclass(frozen=True)
class Draft:
    case: Case
    recording: Recording | None
    transcript: Transcript | None

    def marked_words(self) -> list[tuple[str, bool]]:
        """The draft as (word, doubtful) pairs. Whisper's doubt marks apply only while the draft
        is still Whisper's text; once an agent edited it, its words carry no marks."""
        transcript = self.transcript
        if transcript is not None and transcript.text == self.case.draft_text:
            words: list[tuple[str, bool]] = []
            for segment in transcript.segments:
                if segment.get("words"):
                    words += [
                        (w["text"].strip(), bool(w["doubtful"]))
                        for w in segment["words"]
                        if w["text"].strip()
                    ]
                else:  # no word timings: the segment's own doubt covers its words
                    doubtful = bool(segment.get("doubtful"))
                    words += [(w, doubtful) for w in str(segment["text"]).split()]
            if words:
                return words
        return [(word, False) for word in (self.case.draft_text or "").split()]


def draft_queue(session: Session, actor: Actor, *, limit: int = 50) -> list[Case]:
    """Drafts the actor may work, oldest first: untaken ones of their department (any, for roles
    that see all cases) and those they already took."""
    query = select(Case).where(Case.status == CaseStatus.DRAFT.value)
    untaken = col(Case.assigned_agent_id).is_(None)
    if actor.can("see_all_cases"):
        query = query.where(or_(untaken, col(Case.assigned_agent_id) == actor.agent_id))
    else:
        query = query.where(
            or_(
                col(Case.assigned_agent_id) == actor.agent_id,
                untaken & (col(Case.department) == actor.department),
            )
        )
    drafts = list(session.exec(query.order_by(col(Case.created_at), col(Case.id)).limit(limit)))
    audit.record(
        session, actor, "draft.queue", "case", None, {"references": [c.reference for c in drafts]}
    )
    return drafts


def open_draft(
    session: Session, actor: Actor, reference: str, *, seen_version: int | None = None
) -> Draft:
    """Take the draft (if nobody has) and return it with its recording and transcript.
    ``seen_version``: the version the agent was shown (in the queue), if any."""
    case = load_for(session, actor, reference, "draft.open")
    check_seen(session, case, seen_version)
    if case.status != CaseStatus.DRAFT.value:
        raise RuleViolation(f"case {case.reference} is {case.status}, not a draft")
    if case.assigned_agent_id not in (None, actor.agent_id):
        raise RuleViolation(f"case {case.reference} is being reviewed by another agent")
    if case.assigned_agent_id is None and actor.agent_id is not None:
        claim(session, case)
        case.assigned_agent_id = actor.agent_id
        case.updated_at = moment_or_now(None)
        audit.record(session, actor, "draft.take", "case", case.reference)
    recordings = list(
        session.exec(
            select(Recording).where(Recording.case_id == case.id).order_by(col(Recording.id))
        )
    )
    # The caller's own message transcribes best; the whole-call recording is the fallback.
    recording = next(
        (r for r in recordings if r.kind == RecordingKind.MESSAGE.value),
        recordings[0] if recordings else None,
    )
    transcript = None
    if recording is not None:
        transcript = session.exec(
            select(Transcript)
            .where(Transcript.recording_id == recording.id)
            .order_by(col(Transcript.id).desc())
        ).first()
    audit.record(session, actor, "case.read", "case", case.reference, {"as": "draft review"})
    return Draft(case, recording, transcript)


def confirm_reviewed(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    reference: str,
    *,
    text: str | None,
    category: str,
    department: str | None = None,
    priority: Priority = Priority.NORMAL,
    seen_version: int | None = None,
) -> Case:
    """Confirm a draft as its reviewer: it is taken first (refused while another agent reviews
    it), and ``text`` None confirms the draft's own text as it stands. ``seen_version``: the
    version of the case the reviewer was shown, if any."""
    # Claimed before opening appends to the audit log: the row's lock comes before the chain's.
    claim(session, load_for(session, actor, reference, "draft.open"), seen_version)
    draft = open_draft(session, actor, reference)
    return confirm_draft(
        session,
        settings,
        actor,
        reference,
        text=(draft.case.draft_text or "") if text is None else text,
        category=category,
        department=department,
        priority=priority,
    )
