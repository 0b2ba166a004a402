"""Arabic words the IVR needs besides the flow's own prompts: digits and dates.

Asterisk ships no Arabic sounds and its SAY DATE / SAY NUMBER follow English word order, which
comes out wrong in Arabic ("twenty six" instead of "six and twenty"). So digits are rendered as
Asterisk's ``digits/N`` (SAY DIGITS plays them from the channel's language folder) and dates are
said with the IVR's own prompts: weekday, ordinal day, month ("يوم الأحد، الخامس عشر من مارس").
"""

from __future__ import annotations

from datetime import date

DIGITS = ("صفر", "واحد", "اثنان", "ثلاثة", "أربعة", "خمسة", "ستة", "سبعة", "ثمانية", "تسعة")

# Python's date.weekday(): Monday is 0.
WEEKDAYS = ("الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد")

# The month names used in Libya and Egypt.
MONTHS = (
    "يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو",
    "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر",
)  # fmt: skip

_ORDINAL_UNITS = (
    "الأول", "الثاني", "الثالث", "الرابع", "الخامس", "السادس", "السابع", "الثامن", "التاسع",
)  # fmt: skip


def ordinal_day(day: int) -> str:
    """The masculine ordinal for a day of the month (agreeing with the omitted يوم)."""
    if not 1 <= day <= 31:
        raise ValueError(f"day {day} is not a day of the month")
    if day <= 9:
        return _ORDINAL_UNITS[day - 1]
    if day == 10:
        return "العاشر"
    if day == 20:
        return "العشرون"
    if day == 30:
        return "الثلاثون"
    units = "الحادي" if day % 10 == 1 else _ORDINAL_UNITS[day % 10 - 1]
    if day < 20:
        return f"{units} عشر"
    return f"{units} و{'العشرون' if day < 30 else 'الثلاثون'}"


def system_prompts() -> dict[str, str]:
    """Sound name (relative to the language folder) -> Arabic text, for the prompt build."""
    prompts = {f"digits/{n}": word for n, word in enumerate(DIGITS)}
    prompts.update({f"hotline/date/weekday-{n}": f"يوم {w}" for n, w in enumerate(WEEKDAYS)})
    prompts.update({f"hotline/date/day-{d}": ordinal_day(d) for d in range(1, 32)})
    prompts.update({f"hotline/date/month-{m}": f"من {name}" for m, name in enumerate(MONTHS, 1)})
    return prompts


def date_sounds(day: date) -> list[str]:
    """The sounds that say ``day``, in speaking order."""
    return [
        f"hotline/date/weekday-{day.weekday()}",
        f"hotline/date/day-{day.day}",
        f"hotline/date/month-{day.month}",
    ]
