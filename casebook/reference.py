"""Reference numbers a caller can key on a phone.

A reference is ``BODY_DIGITS`` digits derived from the case's database id, plus one Damm check
digit. The database id makes it unique across processes and machines without coordination; a
permutation of the 8-digit space keyed by the site's own secret (casebook.site_secrets, the
``references`` key) scrambles it, so consecutive cases are not neighbours and one site's numbers
say nothing about another's: without the key, a reference does not tell the next one. The Damm
check digit rejects every single-digit error and every swap of two adjacent digits.

The permutation is a balanced Feistel network over 10^8 = 10^4 x 10^4: each round adds to one
half a pseudo-random function (HMAC-SHA256 under a round key derived from the site's key) of the
other, modulo 10^4. Each round can be undone, so it is a bijection of exactly the 8-digit space
(no cycle-walking is needed: the two halves are equal). ``attempt`` selects another, independent
permutation: a site upgraded from the unkeyed numbering (issue 17) still holds references the
new one may land on, so registration takes the next attempt when the first is taken (see
casebook.cases); references already issued stay as they are stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

BODY_DIGITS = 8
MODULUS = 10**BODY_DIGITS
_HALF: int = 10 ** (BODY_DIGITS // 2)
# Ten rounds, as FF1 (NIST SP 800-38G) uses for small domains: four already make a keyed
# Feistel network a pseudo-random permutation, the rest is margin for halves this small.
_ROUNDS = 10
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


def western_digits(text: str) -> str:
    """``text`` with its Arabic-Indic and Eastern Arabic-Indic digits as Western ones: digits
    people key are read alike wherever digits are read (references, dates)."""
    return text.translate(_DIGIT_MAP)


class InvalidReference(ValueError):
    """The keyed reference is malformed or fails its check digit."""


def _damm_interim(digits: str) -> int:
    interim = 0
    for char in digits:
        interim = _DAMM[interim][int(char)]
    return interim


def check_digit(body: str) -> str:
    return str(_damm_interim(body))


@lru_cache(maxsize=16)
def _round_functions(key: bytes, attempt: int) -> tuple[hmac.HMAC, ...]:
    """Each round's keyed function, ready to copy: the round keys are derived from the site's
    key once, not at every reference."""
    rounds = []
    for number in range(_ROUNDS):
        label = f"15654 reference v1 attempt {attempt} round {number}".encode()
        round_key = hmac.new(key, label, hashlib.sha256).digest()
        rounds.append(hmac.new(round_key, digestmod=hashlib.sha256))
    return tuple(rounds)


def _scramble(value: int, key: bytes, attempt: int) -> int:
    left, right = divmod(value, _HALF)
    for function in _round_functions(key, attempt):
        keyed = function.copy()
        keyed.update(right.to_bytes(2, "big"))
        # 64 bits reduced modulo 10^4: the bias (< 10^-15) is nothing a caller could use.
        left, right = right, (left + int.from_bytes(keyed.digest()[:8], "big")) % _HALF
    return left * _HALF + right


def reference_for_id(case_id: int, key: bytes, attempt: int = 0) -> str:
    """The reference of case ``case_id`` on the site whose reference key is ``key``; ``attempt``
    > 0: the next candidate when an older reference already holds this one."""
    if not 0 < case_id < MODULUS:
        raise ValueError(f"case id {case_id} is outside the reference space")
    if not key:
        raise ValueError("a reference key is needed (the site's secrets folder)")
    body = f"{_scramble(case_id, key, attempt):0{BODY_DIGITS}d}"
    return body + check_digit(body)


def normalise_reference(keyed: str) -> str:
    """Return the canonical reference or raise ``InvalidReference`` with the reason."""
    text = _SEPARATORS.sub("", western_digits(keyed))
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
