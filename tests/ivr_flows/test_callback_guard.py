"""The callback context dials only a number casebook.phone would store (checked on the real
Asterisk 22 too: `0912&Local/900@premium` originated into it is hung up, not dialled)."""

from __future__ import annotations

import re

import pytest

from hotline.app.config import Settings
from ivr_flows.dialplan import render_extensions


def callback_context(settings: Settings) -> list[str]:
    text = render_extensions(settings)
    start = text.index(f"[{settings.callbacks.context}]")
    return text[start : text.index("\n\n", start)].splitlines()


def guard_pattern(lines: list[str]) -> str:
    (guard,) = [line for line in lines if "REGEX(" in line]
    found = re.search(r'REGEX\("([^"]*)" \$\{EXTEN\}\)\}\?dial\)$', guard)
    assert found is not None, guard
    return found[1]


@pytest.mark.parametrize(
    ("exten", "dialled"),
    [
        ("0912345678", True),
        ("+218912345678", True),
        ("123456789012345", True),
        ("1234567890123456", False),  # over phone.max_digits
        ("0912&Local/900@premium", False),  # a second Dial destination
        ("0912345678,30,L(1)", False),  # Dial options
        ("0912)", False),
    ],
)
def test_only_a_normalised_number_reaches_dial(exten: str, dialled: bool) -> None:
    lines = callback_context(Settings())
    guard = next(i for i, line in enumerate(lines) if "REGEX(" in line)
    dial = next(i for i, line in enumerate(lines) if "Dial(" in line)
    assert guard < dial and "(dial)" in lines[dial - 2]
    assert "Hangup(" in lines[guard + 2]  # what fails the guard ends there
    # The same ERE that Asterisk's REGEX evaluates (POSIX and Python agree on this one).
    assert (re.search(guard_pattern(lines), exten) is not None) is dialled


def test_the_guard_follows_phone_max_digits() -> None:
    settings = Settings()
    settings.phone.max_digits = 10
    pattern = guard_pattern(callback_context(settings))
    assert re.search(pattern, "0912345678") and not re.search(pattern, "09123456789")
