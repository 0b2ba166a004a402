"""Promised resolution times: an SLA in business hours, counted on the site's working calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, and_
from sqlmodel import col

from casebook.clock import ensure_aware
from casebook.models import Case, CaseStatus
from casebook.settings import WEEKDAYS, BusinessHours, SlaSettings

# A promise never needs more calendar than this; guards a calendar with no working time.
_MAX_CALENDAR_DAYS = 3660


def sla_hours(sla: SlaSettings, category: str | None) -> float:
    if category is None:
        return sla.default_hours
    return sla.categories.get(category, sla.default_hours)


def _is_working_day(day: date, hours: BusinessHours) -> bool:
    return WEEKDAYS[day.weekday()] in hours.days and day.isoformat() not in hours.holidays


def add_business_hours(start: datetime, business_hours: float, hours: BusinessHours) -> datetime:
    """The moment ``business_hours`` of working time after ``start`` (aware UTC in and out)."""
    zone = hours.zone
    local = ensure_aware(start).astimezone(zone)
    remaining = timedelta(hours=business_hours)
    day = local.date()
    for _ in range(_MAX_CALENDAR_DAYS):
        if _is_working_day(day, hours):
            opens = datetime.combine(day, hours.start, tzinfo=zone)
            closes = datetime.combine(day, hours.end, tzinfo=zone)
            begin = max(opens, local)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(UTC)
                remaining -= available
        day += timedelta(days=1)
        local = datetime.combine(day, hours.start, tzinfo=zone)
    raise ValueError("business hours leave no working time within ten years")


def promised_by(
    created: datetime, category: str | None, sla: SlaSettings, hours: BusinessHours
) -> datetime:
    return add_business_hours(created, sla_hours(sla, category), hours)


# A closed or rejected case is owed nothing, whatever its promise said.
_FINISHED = (CaseStatus.CLOSED.value, CaseStatus.REJECTED.value)


def overdue(moment: datetime) -> ColumnElement[bool]:
    """Cases past their promised resolution at ``moment``: not resolved, not finished, promised
    earlier. The (resolved_at, created_at) index serves it: unresolved cases are few."""
    return and_(
        col(Case.resolved_at).is_(None),
        col(Case.promised_by) < moment,
        col(Case.status).not_in(_FINISHED),
    )
