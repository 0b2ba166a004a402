from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from casebook.settings import BusinessHours, SlaSettings
from casebook.sla import add_business_hours, promised_by, sla_hours

TRIPOLI = ZoneInfo("Africa/Tripoli")  # UTC+2, no daylight saving


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TRIPOLI)


HOURS = BusinessHours()  # Sunday to Thursday, 08:00-16:00


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        ("2026-11-22T09:00", 2, "2026-11-22T11:00"),  # Sunday morning, same day
        ("2026-11-22T15:00", 2, "2026-11-23T09:00"),  # runs over into Monday
        ("2026-11-22T06:00", 1, "2026-11-22T09:00"),  # before opening: counts from 08:00
        ("2026-11-26T15:30", 1, "2026-11-29T08:30"),  # Thursday late: Fri/Sat are weekend
        ("2026-11-27T12:00", 8, "2026-11-29T16:00"),  # registered on a Friday
        ("2026-11-22T08:00", 40, "2026-11-26T16:00"),  # a whole working week
    ],
)
def test_business_hours_follow_the_libyan_week(start: str, hours: float, expected: str) -> None:
    result = add_business_hours(at(start).astimezone(UTC), hours, HOURS)
    assert result.tzinfo is UTC
    assert result == at(expected)


def test_holidays_are_skipped() -> None:
    hours = BusinessHours(holidays=["2026-11-23"])
    result = add_business_hours(at("2026-11-22T15:00"), 2, hours)
    assert result == at("2026-11-24T09:00")


def test_other_time_zones_and_hours_come_from_config() -> None:
    hours = BusinessHours(timezone="Europe/London", days=["mon"], start=time(9), end=time(10))
    start = datetime(2026, 11, 23, 9, 30, tzinfo=ZoneInfo("Europe/London"))
    assert add_business_hours(start, 1, hours) == datetime(
        2026, 11, 30, 9, 30, tzinfo=ZoneInfo("Europe/London")
    )


def test_category_sla_with_a_default_for_the_rest() -> None:
    sla = SlaSettings(default_hours=40, categories={"network": 8})
    assert sla_hours(sla, "network") == 8
    assert sla_hours(sla, "unknown") == 40
    assert sla_hours(sla, None) == 40
    assert promised_by(at("2026-11-22T08:00"), "network", sla, HOURS) == at("2026-11-22T16:00")
