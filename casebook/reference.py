"""Reference numbers a caller can key on a phone.

A reference is ``BODY_DIGITS`` digits derived from the case's database id, plus one Damm check
digit. The database id makes it unique across processes and machines without coordination; an
affine permutation of the id (multiplier coprime with 10) spreads consecutive cases so a caller
cannot guess a neighbour's number by adding one. The Damm check digit rejects every single-digit
error and every swap of two adjacent digits.
"""

from __future__ import annotations

import re

BODY_DIGITS = 8
MODULUS = 10**BODY_DIGITS
# Coprime with 10, so id -> (id * A + B) mod 10^8 is a bijection: no two ids share a body.
_MULTIPLIER = 61_803_397
_OFFSET = 27_182_818
REFERENCE_LENGTH = BODY_DIGITS + 1

# The Damm quasigroup of order 10 (totally anti-symmetric, zero diagonal).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

# Western, Arabic-Indic and Eastern Arabic-Indic digits all count as keyed digits.
_DIGIT_MAP = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_SEPARATORS = re.compile(r"[\s\-./]")


class InvalidReference(ValueError):
    """The keyed reference is malformed or fails its check digit."""


def _damm_interim(digits: str) -> int:
    interim = 0
    for char in digits:
        interim = _DAMM[interim][int(char)]
    return interim


def check_digit(body: str) -> str:
    return str(_damm_interim(body))


def reference_for_id(case_id: int) -> str:
    if not 0 < case_id < MODULUS:
        raise ValueError(f"case id {case_id} is outside the reference space")
    body = f"{(case_id * _MULTIPLIER + _OFFSET) % MODULUS:0{BODY_DIGITS}d}"
    return body + check_digit(body)


def normalise_reference(keyed: str) -> str:
    """Return the canonical reference or raise ``InvalidReference`` with the reason."""
    text = _SEPARATORS.sub("", keyed.translate(_DIGIT_MAP))
    if not text:
        raise InvalidReference("no reference number was keyed")
    if not text.isascii() or not text.isdigit():
        raise InvalidReference("a reference number has digits only")
    if len(text) != REFERENCE_LENGTH:
        raise InvalidReference(f"a reference number has {REFERENCE_LENGTH} digits, got {len(text)}")
    if _damm_interim(text) != 0:
        raise InvalidReference("check digit does not match: a digit was mistyped")
    return text


def is_valid(keyed: str) -> bool:
    try:
        normalise_reference(keyed)
    except InvalidReference:
        return False
    return True
