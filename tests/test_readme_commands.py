"""Docs that are tests: every `hotline` command says what it does, every option what it takes,
and the README's command block is what the CLI says (tests/readme_commands.py renders it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
import typer.main

from tests import readme_commands
from tests.readme_commands import WRITE_COMMAND

REWRITE = f"run `{WRITE_COMMAND}` and review the diff"


def missing_help(root: Any) -> list[str]:
    """'hotline cases list: --limit' for each command, group or parameter without help."""
    found = []
    every = [*readme_commands.groups(root), *readme_commands.commands(root)]
    for path, command in every:
        name = f"hotline {path}".strip()
        if not (command.help or "").strip():
            found.append(f"{name}: the command itself (its docstring or help=)")
        found += [
            f"{name}: {param.opts[0] if param.param_type_name == 'option' else param.name}"
            for param in command.params
            if not getattr(param, "hidden", False) and not (param.help or "").strip()
        ]
    return found


def readme_block() -> str:
    return readme_commands.readme_block(readme_commands.README.read_text(encoding="utf-8"))


def test_every_command_group_option_and_argument_has_help() -> None:
    missing = missing_help(readme_commands.root())
    assert not missing, "no help; write it in cli.py:\n" + "\n".join(missing)


def test_every_command_has_a_paragraph_in_the_readme_block() -> None:
    unplaced = readme_commands.unplaced()
    assert not unplaced, f"add to SECTIONS in tests/readme_commands.py: {', '.join(unplaced)}"


def test_every_command_is_in_the_readme() -> None:
    listed = readme_commands.entries(readme_block())
    missing = [f"hotline {path}" for path, _ in readme_commands.commands() if path not in listed]
    assert not missing, f"missing from README.md's Commands: {', '.join(missing)}; " + REWRITE


def test_the_readme_command_block_is_what_the_cli_says() -> None:
    problems = readme_commands.stale(readme_block())
    assert not problems, "README.md's command block: " + "; ".join(problems) + "; " + REWRITE


# The checks themselves, on a small app and a doctored README: they find what they look for.


def small_app() -> Any:
    app = typer.Typer()
    sub = typer.Typer(help="Things.")
    app.add_typer(sub, name="things")

    @sub.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="Its name.")],
        count: Annotated[int, typer.Option(help="How many.")] = 1,
        colour: Annotated[str, typer.Option()] = "red",
    ) -> None:
        """Add a thing."""

    @app.command("quiet")
    def quiet(loud: Annotated[bool, typer.Option("--loud", help="Shout.")] = False) -> None:
        pass

    return typer.main.get_command(app)


def test_missing_help_names_the_command_and_the_option() -> None:
    assert missing_help(small_app()) == [
        "hotline: the command itself (its docstring or help=)",
        "hotline quiet: the command itself (its docstring or help=)",
        "hotline things add: --colour",
    ]


def test_usage_shows_arguments_then_required_then_optional_options() -> None:
    [(path, command)] = [
        each for each in readme_commands.commands(small_app()) if each[0] != "quiet"
    ]
    assert readme_commands.entry(path, command) == [
        "# Add a thing.",
        "hotline things add NAME [--count N] [--colour COLOUR]",
    ]


def test_long_usage_wraps_between_options_only() -> None:
    pieces = ["hotline x", *[f"[--option-{n} VALUE…]" for n in range(8)]]
    lines = readme_commands.fill(pieces)
    assert len(lines) > 1
    assert all(len(line) <= readme_commands.WIDTH for line in lines)
    assert all(line.startswith(readme_commands.INDENT + "[--option-") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == " ".join(pieces)


def test_a_stale_block_names_each_command_to_fix() -> None:
    block = readme_commands.render()
    doctored = block.replace("hotline cases show REF [--json]", "hotline cases show REF")
    doctored = doctored.replace("hotline agi\n", "hotline agi\n# Old.\nhotline gone\n")
    listen = readme_commands.entries(block)["listen"] + "\n"
    doctored = doctored.replace(listen, "")
    assert readme_commands.stale(doctored) == [
        "hotline cases show differs",
        "hotline listen is missing",
        "hotline gone is no command",
    ]
    assert readme_commands.stale(block) == []


def test_a_command_in_no_section_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    sections = tuple(tuple(n for n in names if n != "qa") for names in readme_commands.SECTIONS)
    monkeypatch.setattr(readme_commands, "SECTIONS", sections)
    assert readme_commands.unplaced() == [
        "qa verify",
        "qa sample",
        "qa score",
        "qa history",
        "qa report",
    ]


def test_write_rewrites_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    before, after = "# Title\n\n## Commands\n\n```\n", "```\n\nExit codes: …\n"
    readme.write_text(f"{before}hotline old\n{after}", encoding="utf-8")
    assert readme_commands.write(readme) is True
    assert readme.read_text(encoding="utf-8") == before + readme_commands.render() + after
    assert readme_commands.write(readme) is False
