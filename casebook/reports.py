"""Figures for supervisors: volumes, CSAT (strict and lenient), CES and SLA met/missed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from casebook import audit, sla
from casebook.access import Actor
from casebook.clock import ensure_aware, utcnow
from casebook.models import Call, Case, FollowUp, FollowUpResult
from casebook.settings import FollowUpSettings

R = FollowUpResult


@dataclass(frozen=True)
class Report:
    since: str | None
    until: str
    cases_total: int
    cases_by_status: dict[str, int]
    cases_by_category: dict[str, int]
    calls_total: int
    calls_abandoned: int
    followups_answered: int
    # Share of answered follow-ups: strict counts "satisfied" only, lenient adds "partially".
    csat_strict: float | None
    csat_lenient: float | None
    # Share of effort answers at or above the "easy" threshold, and their mean.
    ces: float | None
    ces_mean: float | None
    sla_met: int
    sla_missed: int
    sla_overdue_open: int
    followup_results: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def build_report(
    session: Session,
    actor: Actor,
    followup_settings: FollowUpSettings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Report:
    if not actor.can("view_reports"):
        raise audit.denial(
            actor, "report.view", "report", None, f"{actor.username} may not view reports"
        )
    end = utcnow() if until is None else ensure_aware(until)
    start = None if since is None else ensure_aware(since)

    def in_period(column: Any) -> list[Any]:
        conditions = [column <= end]
        if start is not None:
            conditions.append(column >= start)
        return conditions

    case_period = in_period(col(Case.created_at))
    by_status = dict(
        session.exec(
            select(Case.status, func.count()).where(*case_period).group_by(Case.status)
        ).all()
    )
    by_category = {
        category or "uncategorised": count
        for category, count in session.exec(
            select(Case.category, func.count()).where(*case_period).group_by(Case.category)
        ).all()
    }
    call_period = in_period(col(Call.ended_at))
    calls_total = session.exec(select(func.count()).select_from(Call).where(*call_period)).one()
    calls_abandoned = session.exec(
        select(func.count()).select_from(Call).where(*call_period, col(Call.abandoned))
    ).one()

    followup_period = in_period(col(FollowUp.at))
    results = dict(
        session.exec(
            select(FollowUp.result, func.count()).where(*followup_period).group_by(FollowUp.result)
        ).all()
    )
    satisfied = results.get(R.SATISFIED.value, 0)
    partial = results.get(R.PARTIALLY_SATISFIED.value, 0)
    answered = satisfied + partial + results.get(R.NOT_SATISFIED.value, 0)
    efforts = list(
        session.exec(
            select(FollowUp.effort_score).where(
                *followup_period, col(FollowUp.effort_score).is_not(None)
            )
        ).all()
    )
    easy = sum(
        1
        for score in efforts
        if score is not None and score >= followup_settings.effort_easy_threshold
    )
    scores = [score for score in efforts if score is not None]

    resolved_period = in_period(col(Case.resolved_at))
    sla_met = session.exec(
        select(func.count())
        .select_from(Case)
        .where(*resolved_period, col(Case.resolved_at) <= col(Case.promised_by))
    ).one()
    sla_missed = session.exec(
        select(func.count())
        .select_from(Case)
        .where(*resolved_period, col(Case.resolved_at) > col(Case.promised_by))
    ).one()
    overdue = session.exec(select(func.count()).select_from(Case).where(sla.overdue(end))).one()

    report = Report(
        since=start.isoformat() if start else None,
        until=end.isoformat(),
        cases_total=sum(by_status.values()),
        cases_by_status=by_status,
        cases_by_category=by_category,
        calls_total=calls_total,
        calls_abandoned=calls_abandoned,
        followups_answered=answered,
        csat_strict=_ratio(satisfied, answered),
        csat_lenient=_ratio(satisfied + partial, answered),
        ces=_ratio(easy, len(scores)),
        ces_mean=round(sum(scores) / len(scores), 3) if scores else None,
        sla_met=sla_met,
        sla_missed=sla_missed,
        sla_overdue_open=overdue,
        followup_results=results,
    )
    audit.record(
        session,
        actor,
        "report.view",
        "report",
        None,
        {"since": report.since, "until": report.until},
    )
    return report
