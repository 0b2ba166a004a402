"""The README's command block, rendered from the `hotline` command tree.

    python -m tests.readme_commands            print the block
    python -m tests.readme_commands --write    rewrite the block in README.md

The block opens with `hotline`'s own help and global options; then each command is its help's
first paragraph as a comment, then its usage: arguments, required options, then [optional] ones
in the order `--help` shows them; `…` marks an option that may be repeated. Lines wrap at 100
columns. tests/test_readme_commands.py fails when README.md differs.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

import cli

README = Path(__file__).resolve().parents[1] / "README.md"
WIDTH = 100
INDENT = "    "
WRITE_COMMAND = "python -m tests.readme_commands --write"

# The layout only: which groups of commands share a paragraph of the block, in this order (people
# who set a site up, signing in, agents at work, watching, QA, running it). Usage and help come
# from the CLI.
SECTIONS: tuple[tuple[str, ...], ...] = (
    ("db", "agents"),
    ("login", "logout", "whoami", "password"),
    ("review", "drafts", "cases", "followup", "callbacks", "report"),
    ("calls", "status", "transcribe"),
    ("qa", "recordings", "audit"),
    ("serve", "api", "listen", "agi", "worker", "scheduler", "prompts", "asterisk", "demo"),
)
# The block: the first fenced block after this heading.
BLOCK = re.compile(r"(^## Commands\n\n```\n)(.*?)(^```$)", re.DOTALL | re.MULTILINE)


def root() -> Any:
    """The click command behind the Typer app."""
    return typer.main.get_command(cli.app)


def commands(group: Any | None = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every command that runs something ("agents add", "review"), in the CLI's own order; the
    groups themselves ("agents") are walked, not yielded."""
    group = root() if group is None else group
    for name, command in getattr(group, "commands", {}).items():
        if command.hidden:
            continue
        if getattr(command, "commands", None) is not None:
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


def groups(group: Any | None = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """The root ("") and every sub-command group, for their own help and options."""
    group = root() if group is None else group
    yield " ".join(path), group
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "commands", None) is not None:
            yield from groups(command, (*path, name))


def placeholder(param: Any) -> str:
    """What stands for a parameter's value: its metavar, its choices, N for a number, PATH for a
    path, else its name in capitals."""
    if param.metavar:
        return str(param.metavar)
    descriptor = param.type_descriptor
    if descriptor.is_choice and descriptor.choices:
        return "|".join(str(getattr(choice, "value", choice)) for choice in descriptor.choices)
    if descriptor.annotation is int:
        return "N"
    if descriptor.is_path:
        return "PATH"
    return str(param.name).upper()


def usage_pieces(command: Any) -> list[str]:
    arguments: list[str] = []
    required: list[str] = []
    optional: list[str] = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            arguments.append(placeholder(param) if param.required else f"[{placeholder(param)}]")
            continue
        piece = param.opts[0] if param.is_flag else f"{param.opts[0]} {placeholder(param)}"
        piece += "…" if param.multiple else ""
        (required if param.required else optional).append(piece)
    return arguments + required + [f"[{piece}]" for piece in optional]


def summary(command: Any) -> str:
    """The help's first paragraph on one line (as `hotline --help` lists it)."""
    return " ".join((command.help or "").strip().split("\n\n")[0].split())


def entry(path: str, command: Any) -> list[str]:
    comment = textwrap.wrap(
        summary(command), WIDTH, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False
    )
    name = f"hotline {path}".strip()
    below = ["COMMAND …"] if getattr(command, "commands", None) is not None else []
    return comment + fill([name, *usage_pieces(command), *below])


def fill(pieces: list[str]) -> list[str]:
    """Pieces joined by spaces into lines of at most WIDTH, breaking between pieces only (so
    "--role ROLE…" stays together); continuation lines are indented."""
    lines = [pieces[0]]
    for piece in pieces[1:]:
        if len(lines[-1]) + 1 + len(piece) <= WIDTH:
            lines[-1] += f" {piece}"
        else:
            lines.append(INDENT + piece)
    return lines


def section_of(path: str) -> int | None:
    top = path.split(" ", 1)[0]
    return next((index for index, names in enumerate(SECTIONS) if top in names), None)


def unplaced() -> list[str]:
    """Commands no section names: the block cannot show them."""
    return [path for path, _command in commands() if section_of(path) is None]


def render() -> str:
    """The block's text as the CLI says it should be: the root (its help and global options),
    then each section's commands."""
    found = list(commands())
    paragraphs = ["\n".join(entry("", root()))]
    for names in SECTIONS:
        lines = []
        for name in names:
            for path, command in found:
                if path.split(" ", 1)[0] == name:
                    lines += entry(path, command)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs) + "\n"


def readme_block(text: str) -> str:
    match = BLOCK.search(text)
    if match is None:
        raise ValueError("README.md has no ``` block right under '## Commands'")
    return match.group(2)


def entries(text: str) -> dict[str, str]:
    """A block's entries by command ("" for the root): an entry is its comment lines, its
    `hotline …` line and that line's continuations."""
    found: dict[str, str] = {}
    current: list[str] = []
    for line in [*text.splitlines(), ""]:
        starts = not line or line.startswith(("#", "hotline"))
        if starts and current and not current[-1].startswith("#"):
            found[command_path(current)] = "\n".join(current)
            current = []
        if line:
            current.append(line)
    return found


def command_path(lines: list[str]) -> str:
    """ "agents add" from "hotline agents add USERNAME --name NAME …"."""
    usage = next((line for line in lines if line.startswith("hotline")), "hotline").split()
    words = []
    for word in usage[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        words.append(word)
    return " ".join(words)


def stale(block: str) -> list[str]:
    """What the README's block says wrong, command by command."""
    want, have = entries(render()), entries(block)
    problems = [
        (f"hotline {path}" if path else "hotline's own line (global options)")
        + (" differs" if path in have else " is missing")
        for path, text in want.items()
        if have.get(path) != text
    ]
    problems += [f"hotline {path} is no command" for path in have if path not in want]
    if not problems and block != render():
        problems.append("the order or the spacing differs")
    return problems


def write(readme: Path = README) -> bool:
    """Rewrite the block in place; True when it changed."""
    text = readme.read_text(encoding="utf-8")
    readme_block(text)
    new = BLOCK.sub(lambda match: match.group(1) + render() + match.group(3), text, count=1)
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str]) -> int:
    if argv not in ([], ["--write"]):
        print(__doc__, file=sys.stderr)
        return 2
    if unplaced():
        print(f"no section in tests/readme_commands.py for: {', '.join(unplaced())}")
        return 1
    if not argv:
        print(render(), end="")
    elif write():
        print(f"rewrote the command block of {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
