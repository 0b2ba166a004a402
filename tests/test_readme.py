"""The README's configuration snippets are what an operator pastes: they must work as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
INI_BLOCK = re.compile(r"^```ini\n(.*?)^```", re.DOTALL | re.MULTILINE)


def systemd_units() -> list[str]:
    return INI_BLOCK.findall(README.read_text(encoding="utf-8"))


def trailing_comments(unit: str) -> list[str]:
    """Lines where a comment follows a value: systemd reads only whole-line comments, so the
    comment would become part of the value (an EnvironmentFile path that does not exist)."""
    found = []
    for line in unit.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";", "[")):
            continue
        _key, _, value = stripped.partition("=")
        if re.search(r"\s[#;]", value):
            found.append(line)
    return found


def test_the_readme_has_systemd_units() -> None:
    assert any("[Service]" in unit for unit in systemd_units())


def test_systemd_units_have_comments_only_on_lines_of_their_own() -> None:
    for unit in systemd_units():
        assert trailing_comments(unit) == []


def test_a_trailing_comment_is_found() -> None:
    unit = "[Service]\nEnvironmentFile=/etc/hotline/secrets.env   # HOTLINE_AMI__SECRET=…\n"
    assert trailing_comments(unit) == [unit.splitlines()[1]]
