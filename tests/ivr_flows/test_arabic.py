"""Digits and dates in Arabic word order."""

from __future__ import annotations

from datetime import date

import pytest

from ivr_flows.arabic import date_sounds, ordinal_day, system_prompts


@pytest.mark.parametrize(
    ("day", "words"),
    [
        (1, "الأول"),
        (10, "العاشر"),
        (11, "الحادي عشر"),
        (15, "الخامس عشر"),
        (20, "العشرون"),
        (21, "الحادي والعشرون"),
        (26, "السادس والعشرون"),
        (30, "الثلاثون"),
        (31, "الحادي والثلاثون"),
    ],
)
def test_ordinal_days(day: int, words: str) -> None:
    assert ordinal_day(day) == words


def test_no_day_zero() -> None:
    with pytest.raises(ValueError, match="not a day"):
        ordinal_day(0)


def test_a_date_is_weekday_day_month() -> None:
    sounds = date_sounds(date(2026, 3, 15))  # a Sunday
    assert sounds == ["hotline/date/weekday-6", "hotline/date/day-15", "hotline/date/month-3"]
    texts = system_prompts()
    assert [texts[s] for s in sounds] == ["يوم الأحد", "الخامس عشر", "من مارس"]


def test_every_sound_a_date_or_say_digits_needs_is_there() -> None:
    texts = system_prompts()
    assert len(texts) == 10 + 7 + 31 + 12
    assert texts["digits/0"] == "صفر" and texts["digits/9"] == "تسعة"
