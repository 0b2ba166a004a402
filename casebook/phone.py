"""Phone numbers as callers present them: 0910000001, +218910000001, 00218 91 000 0001.

A caller number comes from the PBX (CallerID, the AGI's agi_callerid), which the caller's
network or the caller controls: it is normalised here before anything stores it, and only a
normalised number is ever called back (the dialplan's callback context checks the same
``dial_pattern``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from casebook.settings import PhoneSettings

# Arabic-Indic and Eastern Arabic-Indic digits, as an Arabic handset may present them.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
# What people and networks put between digits; anything else (a control character, a letter,
# `&` or `/` that would make a second Dial destination) is not a phone number.
_SEPARATORS = re.compile(r"[ \-.()]")
# What Asterisk presents when the number is withheld or not known.
UNKNOWN = frozenset({"", "<unknown>", "unknown", "anonymous", "<anonymous>"})
# An audit entry keeps the start of a refused number: enough to recognise, never megabytes.
_SHOWN = 40


def dial_pattern(phone: PhoneSettings) -> str:
    """The one rule, as a regular expression Python and Asterisk's REGEX (POSIX ERE) read
    alike: digits, an optional leading +, 1 to ``max_digits`` digits."""
    return f"^[+]?[0-9]{{1,{phone.max_digits}}}$"


@cache
def _rule(max_digits: int) -> re.Pattern[str]:
    # Compiled once: the listener normalises every call's number.
    return re.compile(dial_pattern(PhoneSettings(max_digits=max_digits)))


@dataclass(frozen=True)
class CallerNumber:
    """A caller number as it may be stored: ``number`` (None: unknown or refused) and, when the
    PBX gave one that was refused, why, for the audit log."""

    number: str | None
    refused: str | None = None
    given: str | None = None

    def audit_detail(self) -> dict[str, Any]:
        """What the audit log says of a refused number (empty when none was refused)."""
        if self.refused is None or self.given is None:
            return {}
        shown = self.given[:_SHOWN] + ("..." if len(self.given) > _SHOWN else "")
        return {"caller_refused": {"given": shown, "length": len(self.given), "why": self.refused}}


def normalise(given: str | None, phone: PhoneSettings) -> CallerNumber:
    """The number to store for what the PBX presented: separators dropped, Arabic-Indic digits
    made ASCII; an unknown one is None; anything else that is not ``dial_pattern`` is None
    with the reason."""
    # Spaces only: a control character (a line break too) is refused, not trimmed.
    if given is None or given.strip(" ").lower() in UNKNOWN:
        return CallerNumber(None)
    number = _SEPARATORS.sub("", given.strip(" ").translate(_DIGITS))
    if _rule(phone.max_digits).fullmatch(number):
        return CallerNumber(number)
    digits = number.removeprefix("+")
    if digits.isascii() and digits.isdigit():
        why = f"{len(digits)} digits (at most {phone.max_digits})"
    else:
        why = "not a phone number (digits and a leading + only)"
    return CallerNumber(None, why, given)


def dialable(number: str | None, phone: PhoneSettings) -> bool:
    """Whether a stored number may be called back (rows stored before numbers were
    normalised may hold anything)."""
    return number is not None and _rule(phone.max_digits).fullmatch(number) is not None


def national_digits(number: str | None, phone: PhoneSettings) -> str:
    """The national significant number (no country code, no trunk 0), or "" if none."""
    if not number:
        return ""
    digits = re.sub(r"[^0-9]", "", number.translate(_DIGITS))
    code = phone.country_code
    for prefix in ("00" + code, code):
        if digits.startswith(prefix) and len(digits) > len(prefix) + 6:
            return digits[len(prefix) :]
    return digits.removeprefix("0")


def same_number(first: str | None, second: str | None, phone: PhoneSettings) -> bool:
    a, b = national_digits(first, phone), national_digits(second, phone)
    return bool(a) and a == b


def last_digits(number: str | None, phone: PhoneSettings, count: int = 4) -> str:
    return national_digits(number, phone)[-count:]
