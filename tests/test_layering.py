"""The library packages never import the application: each owns its settings (issue 15).

Imports are read with ``ast`` (every ``import`` and ``from ... import``, at any depth, including
those under ``if TYPE_CHECKING``), so a forbidden import fails here before anything runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPLICATION = {"hotline", "cli"}
# Package -> the top-level packages of ours it must not import.
FORBIDDEN = {
    "casebook": APPLICATION | {"transcription", "recordings", "ivr_flows"},
    "transcription": APPLICATION,
    "recordings": APPLICATION,
    "ivr_flows": APPLICATION,
}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in ``tree``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            found.append((node.lineno, node.module))
    return found


def forbidden_imports(package: str) -> list[str]:
    banned = FORBIDDEN[package]
    return [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module in imported_modules(ast.parse(path.read_text(encoding="utf-8")))
        if module.partition(".")[0] in banned
    ]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upper_layers(package: str) -> None:
    assert forbidden_imports(package) == []


def test_imports_are_read_at_any_depth() -> None:
    source = (
        "import hotline.config\n"
        "from cli import main\n"
        "from . import sibling\n"
        "def f() -> None:\n"
        "    from casebook.settings import Section\n"
    )
    assert imported_modules(ast.parse(source)) == [
        (1, "hotline.config"),
        (2, "cli"),
        (5, "casebook.settings"),
    ]
