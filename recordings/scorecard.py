"""The QA scorecard: a reviewer scores a recording on the configured criteria (what callers
expect from complaint staff), each on its scale and with its weight; the report averages the
scores per agent and per criterion over a period."""

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
from casebook.errors import CasebookError
from casebook.models import Agent, QAReview
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


def score_recording(
    session: Session,
    qa: QaSettings,
    actor: Actor,
    recording_id: int,
    scores: Mapping[str, float],
    comment: str | None = None,
) -> QAReview:
    """One review per recording and reviewer: scoring again replaces it (the audit log keeps
    both)."""
    require_reviewer(actor, "qa.score")
    if actor.agent_id is None:
        raise CasebookError(f"{actor.username} is not an agent and cannot review recordings")
    recording = get_recording(session, recording_id)
    checked = _checked(qa, scores)
    review = session.exec(
        select(QAReview).where(
            QAReview.recording_id == recording_id, QAReview.reviewer_id == actor.agent_id
        )
    ).first() or QAReview(recording_id=recording_id, reviewer_id=actor.agent_id)
    action = "qa.rescore" if review.id is not None else "qa.score"
    review.scores = checked
    review.total = weighted_total(qa.criteria, checked)
    review.comment = comment
    session.add(review)
    session.flush()
    detail = {"total": review.total, "case": owner_of(session, recording).reference}
    audit.record(session, actor, action, "recording", recording_id, detail)
    return review


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
    query = select(QAReview).order_by(col(QAReview.id))
    if since is not None:
        query = query.where(col(QAReview.created_at) >= ensure_aware(since))
    if until is not None:
        query = query.where(col(QAReview.created_at) < ensure_aware(until))
    reviews = list(session.exec(query))
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
