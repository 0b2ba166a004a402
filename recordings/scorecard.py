"""The QA scorecard: a reviewer scores a recording on the configured criteria (what callers
expect from complaint staff), each on its scale and with its weight. Scoring a recording again
(the same reviewer or another) adds the next version of its score, kept with the earlier ones;
the report averages the latest version of each recording per agent and per criterion."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from statistics import fmean
from typing import Any

from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.clock import ensure_aware
from casebook.concurrency import locked
from casebook.errors import CasebookError, Conflict, NotFound
from casebook.models import Agent, QAReview, Recording
from recordings.catalogue import get_recording, owner_of
from recordings.integrity import require_reviewer
from recordings.sampling import UNASSIGNED
from recordings.settings import QaCriterion, QaSettings

_ANSWERS = {
    "yes/no": {
        "yes": 1.0,
        "y": 1.0,
        "نعم": 1.0,
        "1": 1.0,
        "no": 0.0,
        "n": 0.0,
        "لا": 0.0,
        "0": 0.0,
    },
    "0-2": {"0": 0.0, "1": 1.0, "2": 2.0, "٠": 0.0, "١": 1.0, "٢": 2.0},
}
MAXIMUM = {"yes/no": 1.0, "0-2": 2.0}


def choices(criterion: QaCriterion) -> str:
    return "yes/no" if criterion.scale == "yes/no" else "0, 1 or 2"


def parse_value(criterion: QaCriterion, answer: str) -> float:
    """A reviewer's answer on the criterion's scale ("2", "yes", "نعم", ...)."""
    value = _ANSWERS[criterion.scale].get(answer.strip().lower())
    if value is None:
        raise CasebookError(f"{criterion.code}: answer {choices(criterion)}, got {answer!r}")
    return value


def parse_answers(qa: QaSettings, answers: Mapping[str, str]) -> dict[str, float]:
    """A whole scorecard as typed (code -> "2", "yes", "نعم", ...); an unknown criterion or an
    answer off its scale is refused, naming the criterion."""
    criteria = {criterion.code: criterion for criterion in qa.criteria}
    scores: dict[str, float] = {}
    for code, answer in answers.items():
        criterion = criteria.get(code)
        if criterion is None:
            raise CasebookError(f"{code}: unknown criterion (choose from {', '.join(criteria)})")
        scores[code] = parse_value(criterion, answer)
    return scores


def weighted_total(criteria: list[QaCriterion], scores: Mapping[str, float]) -> float:
    """0-100: each criterion's share of its maximum, weighted."""
    weight = sum(c.weight for c in criteria)
    earned = sum(c.weight * scores[c.code] / MAXIMUM[c.scale] for c in criteria)
    return 100.0 * earned / weight


def _checked(qa: QaSettings, scores: Mapping[str, float]) -> dict[str, float]:
    known = {c.code: c for c in qa.criteria}
    unknown = sorted(set(scores) - set(known))
    if unknown:
        raise CasebookError(f"unknown criteria {', '.join(unknown)} (see config qa.criteria)")
    # A partial scorecard would pull the averages of the criteria left out.
    absent = [code for code in known if code not in scores]
    if absent:
        raise CasebookError(f"score every criterion; missing: {', '.join(absent)}")
    for code, value in scores.items():
        if value not in _ANSWERS[known[code].scale].values():
            raise CasebookError(f"{code}: {value:g} is not {choices(known[code])}")
    return {c.code: float(scores[c.code]) for c in qa.criteria}


def latest_review(session: Session, recording_id: int) -> QAReview | None:
    query = (
        select(QAReview)
        .where(QAReview.recording_id == recording_id)
        .order_by(col(QAReview.version).desc())
        .limit(1)
    )
    return session.exec(query).first()


def _reviewer_name(session: Session, review: QAReview) -> str:
    reviewer = session.get(Agent, review.reviewer_id)
    return reviewer.username if reviewer is not None else f"agent:{review.reviewer_id}"


def score_recording(
    session: Session,
    qa: QaSettings,
    actor: Actor,
    recording_id: int,
    scores: Mapping[str, float],
    comment: str | None = None,
    *,
    seen_version: int | None = None,
) -> QAReview:
    """The next version of the recording's score; the earlier ones stay as they were.

    ``seen_version``: the latest version the reviewer was shown before scoring (0: none). If
    another was written since, the score is refused (``Conflict``, naming who scored and when)
    so that nobody replaces, unaware, a score they never saw; the reviewer can look and score
    again. Without it (None), the score is added on whatever is there, in the order written.
    """
    require_reviewer(actor, "qa.score")
    if actor.agent_id is None:
        raise CasebookError(f"{actor.username} is not an agent and cannot review recordings")
    # Locked to the end of the transaction (PostgreSQL; SQLite's BEGIN IMMEDIATE already is):
    # of two scores at once, the second waits and numbers itself after the first.
    recording = locked(session, Recording, recording_id)
    if recording is None:
        raise NotFound(f"no recording {recording_id}")
    checked = _checked(qa, scores)
    latest = latest_review(session, recording_id)
    current = 0 if latest is None else latest.version
    if seen_version is not None and seen_version != current:
        if latest is None:
            raise Conflict(f"the score of recording {recording_id}", "not scored")
        raise Conflict(
            f"the score of recording {recording_id}",
            f"version {current}",
            change="scored",
            by=_reviewer_name(session, latest),
            at=latest.created_at,
        )
    review = QAReview(
        recording_id=recording_id,
        version=current + 1,
        reviewer_id=actor.agent_id,
        scores=checked,
        total=weighted_total(qa.criteria, checked),
        comment=comment,
    )
    session.add(review)
    session.flush()
    detail = {
        "total": review.total,
        "version": review.version,
        "case": owner_of(session, recording).reference,
    }
    action = "qa.score" if current == 0 else "qa.rescore"
    audit.record(session, actor, action, "recording", recording_id, detail)
    return review


@dataclass(frozen=True)
class ScoreVersion:
    version: int
    reviewer: str
    total: float | None
    scores: dict[str, float]
    comment: str | None
    at: datetime


@dataclass(frozen=True)
class ScoreContext:
    """What a reviewer sees before scoring: the call (who is heard on it, which case, what kind,
    how long, when) and the score's versions so far, oldest first."""

    recording: int
    kind: str
    agent: str | None  # user name; None: nobody of the staff is heard (IVR-only, abandoned)
    ivr_only: bool
    case: str | None
    duration_seconds: float | None
    recorded_at: datetime
    versions: list[ScoreVersion]

    @property
    def latest_version(self) -> int:
        return self.versions[-1].version if self.versions else 0


def score_context(session: Session, actor: Actor, recording_id: int) -> ScoreContext:
    require_reviewer(actor, "qa.history")
    recording = get_recording(session, recording_id)
    owner = owner_of(session, recording)
    agent = session.get(Agent, owner.agent_id) if owner.agent_id is not None else None
    reviews = session.exec(
        select(QAReview)
        .where(QAReview.recording_id == recording_id)
        .order_by(col(QAReview.version))
    )
    versions = [
        ScoreVersion(
            review.version,
            _reviewer_name(session, review),
            review.total,
            dict(review.scores),
            review.comment,
            review.created_at,
        )
        for review in reviews
    ]
    audit.record(session, actor, "qa.history", "recording", recording_id, {"case": owner.reference})
    return ScoreContext(
        recording_id,
        recording.kind,
        agent.username if agent is not None else None,
        owner.ivr_only,
        owner.reference,
        recording.duration_seconds,
        recording.created_at,
        versions,
    )


@dataclass(frozen=True)
class AgentFigures:
    agent: str
    reviews: int
    total: float  # mean weighted total, 0-100
    criteria: dict[str, float]  # mean score per criterion, on its own scale


@dataclass(frozen=True)
class CriterionFigures:
    code: str
    label_ar: str
    weight: float
    scale: str
    reviews: int
    mean: float | None  # on its scale
    percent: float | None  # of its maximum


@dataclass(frozen=True)
class QaReport:
    since: datetime | None
    until: datetime | None
    reviews: int
    total: float | None
    per_agent: list[AgentFigures] = field(default_factory=list)
    per_criterion: list[CriterionFigures] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "reviews": self.reviews,
            "total": self.total,
            "per_agent": [vars(figures) for figures in self.per_agent],
            "per_criterion": [vars(figures) for figures in self.per_criterion],
        }


def qa_report(
    session: Session,
    qa: QaSettings,
    actor: Actor,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QaReport:
    actor.require("view_reports", "see QA reports")
    query = select(QAReview).order_by(col(QAReview.recording_id), col(QAReview.version))
    if until is not None:
        query = query.where(col(QAReview.created_at) < ensure_aware(until))
    # Each recording's score as it stood at ``until``: its latest version then, counted when
    # that version was written in the period.
    latest = {review.recording_id: review for review in session.exec(query)}
    start = ensure_aware(since) if since is not None else None
    reviews = [
        review
        for review in latest.values()
        if start is None or ensure_aware(review.created_at) >= start
    ]
    names = {a.id: a.username for a in session.exec(select(Agent))}
    by_agent: dict[str, list[QAReview]] = defaultdict(list)
    for review in reviews:
        owner = owner_of(session, get_recording(session, review.recording_id))
        by_agent[names.get(owner.agent_id, UNASSIGNED)].append(review)

    def means(group: list[QAReview]) -> dict[str, float]:
        return {
            c.code: fmean(r.scores[c.code] for r in group if c.code in r.scores)
            for c in qa.criteria
            if any(c.code in r.scores for r in group)
        }

    per_agent = [
        AgentFigures(agent, len(group), fmean(r.total or 0.0 for r in group), means(group))
        for agent, group in sorted(by_agent.items())
    ]
    overall = means(reviews)
    per_criterion = [
        CriterionFigures(
            c.code,
            c.label_ar,
            c.weight,
            c.scale,
            sum(1 for r in reviews if c.code in r.scores),
            overall.get(c.code),
            None if c.code not in overall else 100.0 * overall[c.code] / MAXIMUM[c.scale],
        )
        for c in qa.criteria
    ]
    total = fmean(r.total or 0.0 for r in reviews) if reviews else None
    audit.record(session, actor, "qa.report", "recording", None, {"reviews": len(reviews)})
    return QaReport(since, until, len(reviews), total, per_agent, per_criterion)
