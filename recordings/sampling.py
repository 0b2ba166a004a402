"""QA sampling: a random draw of recorded calls, stratified per agent (who handled the case)
and, within each agent, per stratum (the case's category, abandoned calls, callbacks), so
every agent and every kind of call is heard. A reviewer never gets the same recording twice
(the draws are kept in ``qa_sample``), and a seed makes a draw reproducible: the same seed on
the same data draws the same recordings.
"""

from __future__ import annotations

import random
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.clock import ensure_aware
from casebook.errors import CasebookError
from casebook.models import Agent, QAReview, QASample, Recording, RecordingKind
from recordings.catalogue import Owner, owner_of
from recordings.integrity import require_reviewer

# Seeds are stored in a 32-bit integer column.
MAX_SEED = 2**31 - 1
UNASSIGNED = "-"  # the "agent" of calls no agent handled (abandoned in the IVR, for instance)


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


def stratum_of(recording: Recording, owner: Owner) -> str:
    if recording.kind == RecordingKind.CALLBACK.value:
        return "callback"
    if owner.call is not None and owner.call.abandoned:
        return "abandoned"
    category = owner.case.category if owner.case is not None else None
    return category or "uncategorised"


def _already_had(session: Session, reviewer_id: int) -> set[int]:
    sampled = select(QASample.recording_id).where(QASample.reviewer_id == reviewer_id)
    reviewed = select(QAReview.recording_id).where(QAReview.reviewer_id == reviewer_id)
    return set(session.exec(sampled)) | set(session.exec(reviewed))


def _candidates(
    session: Session, since: datetime, until: datetime, excluded: set[int]
) -> list[Recording]:
    """Playable call recordings of the period, in a stable order (the seed's starting point).
    A caller's Record()ed message holds no staff voice, so it is not QA material."""
    query = (
        select(Recording)
        .where(
            col(Recording.deleted_at).is_(None),
            col(Recording.sha256).is_not(None),
            Recording.kind != RecordingKind.MESSAGE.value,
            col(Recording.created_at) >= ensure_aware(since),
            col(Recording.created_at) < ensure_aware(until),
        )
        .order_by(col(Recording.id))
    )
    return [r for r in session.exec(query) if r.id not in excluded]


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
) -> Sample:
    require_reviewer(actor, "qa.sample")
    if actor.agent_id is None:
        raise CasebookError(f"{actor.username} is not an agent and cannot review recordings")
    if per_agent < 1:
        raise CasebookError("--per-agent must be at least 1")
    chosen_seed = secrets.randbelow(MAX_SEED) if seed is None else seed
    if not 0 <= chosen_seed <= MAX_SEED:
        raise CasebookError(f"the seed must be between 0 and {MAX_SEED}")
    names = {a.id: a.username for a in session.exec(select(Agent))}
    by_agent: dict[str, dict[str, list[Drawn]]] = defaultdict(lambda: defaultdict(list))
    for recording in _candidates(session, since, until, _already_had(session, actor.agent_id)):
        owner = owner_of(session, recording)
        agent = names.get(owner.agent_id, UNASSIGNED)
        stratum = stratum_of(recording, owner)
        by_agent[agent][stratum].append(Drawn(recording, agent, stratum, owner.reference))
    rng = random.Random(chosen_seed)
    drawn = [
        item for agent in sorted(by_agent) for item in _round_robin(rng, by_agent[agent], per_agent)
    ]
    for item in drawn:
        assert item.recording.id is not None  # loaded rows
        session.add(
            QASample(
                recording_id=item.recording.id,
                reviewer_id=actor.agent_id,
                stratum=item.stratum,
                seed=chosen_seed,
            )
        )
    session.flush()
    detail = {
        "seed": chosen_seed,
        "per_agent": per_agent,
        "since": ensure_aware(since).isoformat(),
        "until": ensure_aware(until).isoformat(),
        "recordings": [item.recording.id for item in drawn],
    }
    audit.record(session, actor, "qa.sample", "recording", None, detail)
    return Sample(chosen_seed, actor.username, drawn)
