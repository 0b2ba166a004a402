"""QA sampling: a random draw of recorded calls, stratified per agent (the one heard on the
call) and, within each agent, per stratum (the case's category, abandoned calls, callbacks), so
every agent and every kind of call is heard.

A seed names a sample: the same seed over the same recordings draws the same ones, and a
reviewer repeating a seed of theirs draws again over that sample's period, so the sample can be
shown again and checked. What is left out is said, with a count per reason: recordings outside
the period, IVR-only ones (the caller's message: no staff voice), deleted ones, ones whose file
was missing at ingest and, unless asked for, ones already drawn for the reviewer in an earlier
sample or scored by them (a repeated seed keeps its own).
"""

from __future__ import annotations

import random
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.clock import ensure_aware
from casebook.concurrency import locked
from casebook.errors import CasebookError
from casebook.models import Agent, QAReview, QASample, Recording, RecordingKind
from recordings.catalogue import Owner, ivr_only, owner_of
from recordings.integrity import require_reviewer

# Seeds are stored in a 32-bit integer column.
MAX_SEED = 2**31 - 1
UNASSIGNED = "-"  # the "agent" of calls no agent is heard on (abandoned in the IVR, for instance)

# Why a recording was left out of a sample, in the order they are checked (the first that
# applies counts).
OUT_OF_PERIOD = "out_of_period"
IVR_ONLY = "ivr_only"
DELETED = "deleted"
UNVERIFIED = "unverified"  # its file was missing at ingest: no SHA-256 proves what is heard
REVIEWED = "reviewed"
DRAWN_BEFORE = "drawn_before"
EXCLUSIONS = (OUT_OF_PERIOD, IVR_ONLY, DELETED, UNVERIFIED, REVIEWED, DRAWN_BEFORE)


@dataclass(frozen=True)
class Drawn:
    recording: Recording
    agent: str  # username, or UNASSIGNED
    stratum: str
    case_reference: str | None


@dataclass(frozen=True)
class Sample:
    seed: int
    reviewer: str
    drawn: list[Drawn]
    since: datetime
    until: datetime
    # The seed was drawn by this reviewer before: drawn again over that period.
    repeated: bool = False
    include_drawn: bool = False
    # Reason (EXCLUSIONS) -> how many recordings it left out; every reason is present.
    excluded: dict[str, int] = field(default_factory=dict)


def stratum_of(recording: Recording, owner: Owner) -> str:
    if owner.ivr_only:
        return "ivr_only"
    if recording.kind == RecordingKind.CALLBACK.value:
        return "callback"
    if owner.call is not None and owner.call.abandoned:
        return "abandoned"
    category = owner.case.category if owner.case is not None else None
    return category or "uncategorised"


def _earlier_draw(session: Session, reviewer_id: int, seed: int) -> QASample | None:
    query = (
        select(QASample)
        .where(QASample.reviewer_id == reviewer_id, QASample.seed == seed)
        .order_by(col(QASample.id))
    )
    return session.exec(query).first()


def _had_before(session: Session, reviewer_id: int, seed: int) -> dict[int, str]:
    """Recordings already drawn for the reviewer in another sample, or scored by them; those of
    this seed's own draw are not (a repeat draws them again)."""
    own = set(
        session.exec(
            select(QASample.recording_id).where(
                QASample.reviewer_id == reviewer_id, QASample.seed == seed
            )
        )
    )
    reviewed = select(QAReview.recording_id).where(QAReview.reviewer_id == reviewer_id)
    drawn = select(QASample.recording_id).where(
        QASample.reviewer_id == reviewer_id, QASample.seed != seed
    )
    had = dict.fromkeys(session.exec(drawn), DRAWN_BEFORE)
    had |= dict.fromkeys(session.exec(reviewed), REVIEWED)
    return {recording: why for recording, why in had.items() if recording not in own}


def _exclusion(recording: Recording, had: dict[int, str]) -> str | None:
    if ivr_only(recording):
        return IVR_ONLY
    if recording.deleted_at is not None:
        return DELETED
    if recording.sha256 is None:
        return UNVERIFIED
    assert recording.id is not None  # a loaded row
    return had.get(recording.id)


def _in_period(
    session: Session, since: datetime, until: datetime, had: dict[int, str]
) -> tuple[list[Recording], dict[str, int]]:
    """The period's recordings fit for QA, in a stable order (the seed's starting point), and
    how many were left out for each reason."""
    start, end = ensure_aware(since), ensure_aware(until)
    excluded = dict.fromkeys(EXCLUSIONS, 0)
    outside = or_(col(Recording.created_at) < start, col(Recording.created_at) >= end)
    counted = session.exec(select(func.count()).select_from(Recording).where(outside)).one()
    excluded[OUT_OF_PERIOD] = int(counted)
    query = (
        select(Recording)
        .where(col(Recording.created_at) >= start, col(Recording.created_at) < end)
        .order_by(col(Recording.id))
    )
    fit: list[Recording] = []
    for recording in session.exec(query):
        why = _exclusion(recording, had)
        if why is None:
            fit.append(recording)
        else:
            excluded[why] += 1
    return fit, excluded


def _round_robin(rng: random.Random, strata: dict[str, list[Drawn]], wanted: int) -> list[Drawn]:
    """``wanted`` items taken in turn from each shuffled stratum, so small strata are heard."""
    queues = {name: rng.sample(items, len(items)) for name, items in sorted(strata.items())}
    order = sorted(queues)
    rng.shuffle(order)
    picked: list[Drawn] = []
    while len(picked) < wanted and any(queues.values()):
        for name in order:
            if queues[name] and len(picked) < wanted:
                picked.append(queues[name].pop())
    return picked


def draw_sample(
    session: Session,
    actor: Actor,
    *,
    since: datetime,
    until: datetime,
    per_agent: int,
    seed: int | None = None,
    include_drawn: bool = False,
) -> Sample:
    """A sample for ``actor`` of the recordings of [since, until) (for a seed they drew before:
    of that draw's period). ``include_drawn``: also recordings drawn for them in earlier
    samples or scored by them."""
    require_reviewer(actor, "qa.sample")
    if actor.agent_id is None:
        raise CasebookError(f"{actor.username} is not an agent and cannot review recordings")
    if per_agent < 1:
        raise CasebookError("--per-agent must be at least 1")
    chosen_seed = secrets.randbelow(MAX_SEED) if seed is None else seed
    if not 0 <= chosen_seed <= MAX_SEED:
        raise CasebookError(f"the seed must be between 0 and {MAX_SEED}")
    # One draw at a time per reviewer (PostgreSQL; SQLite's BEGIN IMMEDIATE already is): a
    # draw made meanwhile is seen whole, never half, and its rows are never written twice.
    locked(session, Agent, actor.agent_id)
    earlier = _earlier_draw(session, actor.agent_id, chosen_seed)
    repeated = earlier is not None
    if earlier is not None and earlier.period_start is not None and earlier.period_end is not None:
        since, until = earlier.period_start, earlier.period_end
    had = {} if include_drawn else _had_before(session, actor.agent_id, chosen_seed)
    fit, excluded = _in_period(session, since, until, had)
    names = {a.id: a.username for a in session.exec(select(Agent))}
    by_agent: dict[str, dict[str, list[Drawn]]] = defaultdict(lambda: defaultdict(list))
    for recording in fit:
        owner = owner_of(session, recording)
        agent = names.get(owner.agent_id, UNASSIGNED)
        stratum = stratum_of(recording, owner)
        by_agent[agent][stratum].append(Drawn(recording, agent, stratum, owner.reference))
    rng = random.Random(chosen_seed)
    drawn = [
        item for agent in sorted(by_agent) for item in _round_robin(rng, by_agent[agent], per_agent)
    ]
    kept = set(
        session.exec(
            select(QASample.recording_id).where(
                QASample.reviewer_id == actor.agent_id, QASample.seed == chosen_seed
            )
        )
    )
    for item in drawn:
        assert item.recording.id is not None  # loaded rows
        if item.recording.id in kept:
            continue  # a repeat: drawn under this seed already
        session.add(
            QASample(
                recording_id=item.recording.id,
                reviewer_id=actor.agent_id,
                stratum=item.stratum,
                seed=chosen_seed,
                period_start=ensure_aware(since),
                period_end=ensure_aware(until),
            )
        )
    session.flush()
    detail = {
        "seed": chosen_seed,
        "per_agent": per_agent,
        "since": ensure_aware(since).isoformat(),
        "until": ensure_aware(until).isoformat(),
        "repeated": repeated,
        "include_drawn": include_drawn,
        "excluded": excluded,
        "recordings": [item.recording.id for item in drawn],
    }
    audit.record(session, actor, "qa.sample", "recording", None, detail)
    return Sample(
        chosen_seed,
        actor.username,
        drawn,
        ensure_aware(since),
        ensure_aware(until),
        repeated,
        include_drawn,
        excluded,
    )
