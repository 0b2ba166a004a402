"""Phone numbers as callers present them: 0910000001, +218910000001, 00218 91 000 0001."""

from __future__ import annotations

import re

# Libya's country code; the national form starts with a trunk 0.
COUNTRY_CODE = "218"


def national_digits(number: str | None) -> str:
    """The national significant number (no country code, no trunk 0), or "" if none."""
    if not number:
        return ""
    digits = re.sub(r"\D", "", number)
    for prefix in ("00" + COUNTRY_CODE, COUNTRY_CODE):
        if digits.startswith(prefix) and len(digits) > len(prefix) + 6:
            return digits[len(prefix) :]
    return digits.removeprefix("0")


def same_number(first: str | None, second: str | None) -> bool:
    a, b = national_digits(first), national_digits(second)
    return bool(a) and a == b


def last_digits(number: str | None, count: int = 4) -> str:
    return national_digits(number)[-count:]
