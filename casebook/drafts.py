"""The agent's queue of drafts: complaints registered by the IVR, transcribed, waiting for a
person to confirm what the caller said. Opening a draft takes it for ``drafts.lease_minutes``
(casebook.draft_leases), renewed while the agent works on it and given back on skip or quit, or
by a supervisor; past it the draft is free again. Taking is a change of the case, claimed like
any (casebook.concurrency), so of two agents opening a free draft at once one takes it and the
other is told who did; while one holds it, every other change of it is refused naming them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.cases import confirm_draft, load_for, moment_or_now
from casebook.concurrency import check_seen, claim
from casebook.draft_leases import Lease, end_lease, lease_of, refuse_if_taken
from casebook.errors import RuleViolation, Taken
from casebook.models import Case, CaseStatus, Priority, Recording, RecordingKind, Transcript
from casebook.settings import CasebookConfig, DraftSettings


@dataclass(frozen=True)
class SpokenNumber:
    """A number the caller said, as the transcript stores it in its segments' ``numbers``
    (transcription.numbers): the digits the draft shows and the words Whisper wrote."""

    digits: str
    spoken: str


@dataclass(frozen=True)
class Draft:
    case: Case
    recording: Recording | None
    transcript: Transcript | None
    lease: Lease | None = None  # the reviewer's, as opening took or renewed it

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

    def spoken_numbers(self) -> list[SpokenNumber]:
        """The numbers said in the message, in order, each as digits and as said: what the
        recording holds, so kept beside the draft even once an agent edited its text."""
        if self.transcript is None:
            return []
        return [
            SpokenNumber(str(number["digits"]), str(number["spoken"]))
            for segment in self.transcript.segments
            for number in segment.get("numbers") or ()
        ]


@dataclass(frozen=True)
class QueuedDraft:
    case: Case
    lease: Lease | None  # live leases only: one run out is nobody's


def draft_queue(
    session: Session,
    actor: Actor,
    *,
    taken: bool = False,
    now: datetime | None = None,
    limit: int = 50,
) -> list[QueuedDraft]:
    """Drafts the actor may work, oldest first: their department's (any, for roles that see all
    cases), free or theirs; ``taken`` lists those other agents have open too."""
    moment = moment_or_now(now)
    query = select(Case).where(Case.status == CaseStatus.DRAFT.value)
    if not actor.can("see_all_cases"):
        query = query.where(col(Case.department) == actor.department)
    if not taken:
        query = query.where(
            or_(
                col(Case.draft_lease_agent_id).is_(None),
                col(Case.draft_lease_agent_id) == actor.agent_id,
                col(Case.draft_lease_until) <= moment,
            )
        )
    listed = list(session.exec(query.order_by(col(Case.created_at), col(Case.id)).limit(limit)))
    audit.record(
        session, actor, "draft.queue", "case", None, {"references": [c.reference for c in listed]}
    )
    drafts = []
    for case in listed:
        lease = lease_of(session, case, moment)
        drafts.append(QueuedDraft(case, lease if lease is not None and lease.live else None))
    return drafts


def _must_be_draft(case: Case) -> None:
    if case.status != CaseStatus.DRAFT.value:
        raise RuleViolation(f"case {case.reference} is {case.status}, not a draft")


def _take(
    session: Session, settings: DraftSettings, actor: Actor, case: Case, moment: datetime
) -> None:
    """Take the draft for the actor, or renew their lease: ``lease_minutes`` from ``moment``.
    The case is claimed and nobody else holds it; a lease that ran out is taken over (and said
    so in the audit log)."""
    before = lease_of(session, case, moment)
    case.draft_lease_agent_id = actor.agent_id
    case.draft_lease_until = moment + timedelta(minutes=settings.lease_minutes)
    case.updated_at = moment
    renewing = before is not None and before.live
    detail: dict[str, object] = {"until": case.draft_lease_until.isoformat()}
    if before is not None and not before.live:
        detail["ran_out"] = {"holder": before.holder, "until": before.until.isoformat()}
    action = "draft.renew" if renewing else "draft.take"
    audit.record(session, actor, action, "case", case.reference, detail)


def open_draft(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    reference: str,
    *,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> Draft:
    """Take the draft (or renew the actor's lease of it) and return it with its recording and
    transcript. ``seen_version``: the version the agent was shown (in the queue), if any."""
    moment = moment_or_now(now)
    case = load_for(session, actor, reference, "draft.open")
    check_seen(session, case, seen_version)
    _must_be_draft(case)
    refuse_if_taken(session, actor, case, moment)
    if actor.agent_id is not None:
        claim(session, case)
        _take(session, settings.drafts, actor, case, moment)
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
    return Draft(case, recording, transcript, lease_of(session, case, moment))


def renew_lease(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    reference: str,
    *,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> tuple[Case, Lease]:
    """The agent still works on the draft: their lease runs ``lease_minutes`` from now (taken
    again if it ran out and nobody else took it). ``seen_version``: the version they have."""
    moment = moment_or_now(now)
    case = load_for(session, actor, reference, "draft.renew")
    claim(session, case, seen_version)
    _must_be_draft(case)
    if actor.agent_id is None:
        raise RuleViolation(f"{actor.username} is not an agent: only agents review drafts")
    refuse_if_taken(session, actor, case, moment)
    _take(session, settings.drafts, actor, case, moment)
    lease = lease_of(session, case, moment)
    assert lease is not None  # just taken
    return case, lease


def release_lease(
    session: Session,
    actor: Actor,
    reference: str,
    *,
    now: datetime | None = None,
    seen_version: int | None = None,
) -> tuple[Case, Lease]:
    """Give the draft back: its holder (skip, quit), or a supervisor for anyone's. A lease that
    ran out is anyone's to clear. Returns the case and the lease it had."""
    moment = moment_or_now(now)
    case = load_for(session, actor, reference, "draft.release")
    claim(session, case, seen_version)
    _must_be_draft(case)
    lease = lease_of(session, case, moment)
    if lease is None:
        raise RuleViolation(f"draft {case.reference} is not taken by anyone")
    if lease.live and lease.agent_id != actor.agent_id and not actor.can("supervise_cases"):
        raise Taken(str(case.reference), lease.holder, lease.until)
    end_lease(case)
    case.updated_at = moment
    detail = {"holder": lease.holder, "until": lease.until.isoformat(), "ran_out": not lease.live}
    audit.record(session, actor, "draft.release", "case", case.reference, detail)
    return case, lease


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
    now: datetime | None = None,
    seen_version: int | None = None,
) -> Case:
    """Confirm a draft as its reviewer: ``text`` None confirms the draft's own text as it
    stands (refused, as any confirmation, while another agent has it open). ``seen_version``:
    the version of the case the reviewer was shown, if any."""
    case = load_for(session, actor, reference, "case.open")
    return confirm_draft(
        session,
        settings,
        actor,
        reference,
        text=(case.draft_text or "") if text is None else text,
        category=category,
        department=department,
        priority=priority,
        now=now,
        seen_version=seen_version,
    )
