"""The "must not" column of DESIGN.md's packages table as an import contract (issue 15).

Dependencies run one way: cli -> hotline.app (the application) -> {ivr_flows, transcription,
recordings, the AMI adapter (the rest of hotline)} -> casebook -> nothing of ours. Each rule
below is one row of the table (or that direction) read as imports.

Imports are read with ``ast`` (every ``import`` and ``from ... import``, at any depth, including
those under ``if TYPE_CHECKING``), so a forbidden import fails here before anything runs. Each
import is named down to what it binds: ``from sqlmodel import Session, select`` is
``sqlmodel.Session`` and ``sqlmodel.select``, so a rule can allow one name of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = ("cli", "cli_render", "cli_listing", "cli_client", "cli_player")
CLI_FILES = ("cli.py", "cli_render.py", "cli_listing.py", "cli_client.py", "cli_player.py")
# The client's own modules: what people's commands run on their machines.
CLIENT_FILES = ("cli_render.py", "cli_listing.py", "cli_client.py", "cli_player.py")
DATABASE = ("sqlmodel", "sqlalchemy", "casebook")
SPEECH = ("transcription", "faster_whisper", "ctranslate2")
AUDIO = ("recordings", "wave", "av", "numpy")


@dataclass(frozen=True)
class Rule:
    """Files under ``paths`` (minus ``excluded``) import nothing in ``forbidden`` except what
    ``allowed`` names (a dotted prefix matches itself and everything below it)."""

    row: str
    paths: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def files(self) -> Iterator[Path]:
        for name in self.paths:
            path = ROOT / name
            for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
                if not any(file.is_relative_to(ROOT / other) for other in self.excluded):
                    yield file

    def breaks(self, name: str) -> bool:
        return under(name, self.forbidden) and not under(name, self.allowed)


ADAPTER_MAY_USE = ("casebook.settings", "casebook.retry", "casebook.call_status")
# Everything of ours, and the third-party packages a stdlib-only module could be tempted by.
OURS = ("hotline", *CLI, "casebook", "ivr_flows", "transcription", "recordings", "inert_text")

RULES = [
    Rule(
        "what the AMI adapter may use of casebook holds no database",
        tuple(f"{name.replace('.', '/')}.py" for name in ADAPTER_MAY_USE),
        ("sqlmodel", "sqlalchemy", "casebook", "hotline", *CLI),
    ),
    Rule(
        "hotline/ (the AMI adapter and call tracker) must not touch the database, audio or "
        "speech, nor import the application or the CLI",
        ("hotline",),
        ("hotline.app", *CLI, "ivr_flows", *DATABASE, *SPEECH, *AUDIO),
        # No database in these (the rule below checks): the pydantic Section base of
        # AmiSettings, the one backoff policy, the one call-status rule.
        allowed=ADAPTER_MAY_USE,
        excluded=("hotline/app", "hotline/simulator"),
    ),
    Rule(
        # It stands in for Asterisk, which writes the call recordings (hence ``wave``), and
        # drives the real FastAGI server over its socket only, so it needs no ivr_flows import.
        "hotline/simulator (the adapter's test PBX) must not touch the database or speech nor "
        "import ivr_flows, the application or the CLI",
        ("hotline/simulator",),
        ("hotline.app", *CLI, "ivr_flows", *DATABASE, *SPEECH, "recordings"),
    ),
    Rule("hotline/app (the application) must not import the CLI", ("hotline/app",), CLI),
    Rule(
        "the listener's persistence stores through casebook and recordings services: no query "
        "of its own",
        ("hotline/app/persist.py",),
        ("sqlmodel", "sqlalchemy"),
        allowed=("sqlmodel.Session",),
    ),
    Rule(
        # Issue 16: the HTTP API parses, calls a service as the signed-in person and renders;
        # the query, like the rule, is the service's. It is the CLI's server, never its client.
        "the HTTP API runs no query of its own and does not import the CLI",
        ("hotline/app/api.py",),
        ("sqlmodel", "sqlalchemy", *CLI),
        allowed=("sqlmodel.Session", "sqlmodel.SQLModel"),
    ),
    Rule(
        "ivr_flows must not reach into the database except through casebook services "
        "(a service takes a Session; the query is the service's)",
        ("ivr_flows",),
        ("hotline", *CLI, "sqlmodel", "sqlalchemy"),
        allowed=("sqlmodel.Session",),
    ),
    Rule(
        # The job queue (casebook.jobs) claims a recording and attaches the finished draft to
        # its case; what the case does next is casebook's. So transcription reads no case
        # model, workflow, drafts or SLA, and runs no query of its own. It stands beside
        # recordings, not on it (it reads the files a job names).
        "transcription must not decide case workflow: casebook only through its job queue",
        ("transcription",),
        ("hotline", *CLI, "ivr_flows", "recordings", "sqlmodel", "sqlalchemy", "casebook"),
        allowed=(
            "casebook.jobs",
            # The one Arabic folding rule: transcription's metrics and guards compare with it,
            # the casebook's search indexes with it.
            "casebook.arabic",
            "casebook.access",
            "casebook.clock",
            "casebook.db",
            "casebook.settings",
            "casebook.models.TranscriptionJob",
        ),
    ),
    Rule(
        # asterisk is both asterisk-ami and pyst2's asterisk.agi; AMI and AGI are plain TCP.
        "casebook must not talk to Asterisk (and imports nothing else of ours)",
        ("casebook",),
        ("hotline", *CLI, "ivr_flows", "transcription", "recordings", "asterisk", "socket"),
    ),
    Rule(
        "recordings must not transcribe",
        ("recordings",),
        ("hotline", *CLI, "ivr_flows", *SPEECH),
    ),
    Rule(
        # Issue 16: people's commands are clients of the server's API. The CLI holds no config,
        # database, recordings or speech; it reaches the application (hotline.app) only for
        # the operator commands run on the server host, imported inside those commands.
        "the CLI must not hold business rules, open the database, read recordings or "
        "transcribe: people's commands go through the server, operator commands through "
        "hotline.app, never the adapter",
        CLI_FILES,
        (
            "sqlmodel",
            "sqlalchemy",
            "casebook",
            "recordings",
            "transcription",
            "ivr_flows",
            *SPEECH,
            *AUDIO,
            "hotline",
        ),
        allowed=("hotline.app",),
    ),
    Rule(
        "the client's modules (rendering, the API client, the player) need nothing of the "
        "application: they run where only the server's address and a session are",
        CLIENT_FILES,
        ("hotline", "cli", "pydantic", "typer"),
    ),
    Rule(
        # Issue 17: the one helper that makes stored text inert for a terminal, shared by the
        # CLI (which must start fast and holds nothing of the server) and the server's API.
        "inert_text is the standard library only: the CLI and the API both import it",
        ("inert_text.py",),
        (*OURS, *DATABASE, "rich", "pydantic", "typer", "fastapi", "starlette", "bidi"),
    ),
]


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def imported_names(tree: ast.AST, module: str = "") -> list[tuple[int, str]]:
    """(line, dotted name) for every import in ``tree``, the module ``module``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # ``module`` is the importing module's dotted name: level 1 is its package.
            base = module.split(".")[: -node.level] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            found.extend((node.lineno, f"{source}.{alias.name}") for alias in node.names)
    return found


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def violations(rule: Rule, path: Path, source: str) -> list[str]:
    where = path.relative_to(ROOT).as_posix()
    return [
        f"{where}:{line}: imports {name}"
        for line, name in imported_names(ast.parse(source), module_of(path))
        if rule.breaks(name)
    ]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.paths[0])
def test_design_rule_holds(rule: Rule) -> None:
    files = list(rule.files())
    assert files, f"no files for {rule.paths}"
    found = [v for path in files for v in violations(rule, path, path.read_text(encoding="utf-8"))]
    assert not found, "\n".join([rule.row, *found])


# One import each rule must refuse, written into a file the rule covers.
REFUSED = {
    "casebook/settings.py": ("casebook/call_status.py", "from casebook.models import Call"),
    "hotline": ("hotline/tracker.py", "from sqlmodel import select"),
    "hotline/simulator": ("hotline/simulator/server.py", "from ivr_flows import AgiServer"),
    "hotline/app": ("hotline/app/demo.py", "from cli_render import visual"),
    "hotline/app/persist.py": ("hotline/app/persist.py", "from sqlmodel import select"),
    "hotline/app/api.py": ("hotline/app/api.py", "from sqlmodel import select"),
    "ivr_flows": ("ivr_flows/casebook_backend.py", "from sqlmodel import Session, select"),
    "transcription": ("transcription/worker.py", "from casebook.models import Case"),
    "casebook": ("casebook/calls.py", "from asterisk.ami import AMIClient"),
    "recordings": ("recordings/ingest.py", "from transcription.pipeline import transcribe"),
    "cli.py": ("cli.py", "from casebook.models import Case"),
    "cli_render.py": ("cli_client.py", "from hotline.app.operator import bootstrap"),
    "inert_text.py": ("inert_text.py", "from rich.markup import escape"),
}


def test_inert_text_imports_the_standard_library_only() -> None:
    import sys

    source = (ROOT / "inert_text.py").read_text(encoding="utf-8")
    names = {name.split(".")[0] for _, name in imported_names(ast.parse(source), "inert_text")}
    assert names - {"__future__"} <= set(sys.stdlib_module_names), names


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.paths[0])
def test_each_rule_refuses_a_forbidden_import(rule: Rule) -> None:
    file, source = REFUSED[rule.paths[0]]
    assert violations(rule, ROOT / file, source), rule.row


def test_imports_are_read_at_any_depth_and_by_name() -> None:
    source = (
        "import hotline.app.config\n"
        "from cli import main\n"
        "from . import sibling\n"
        "from ..settings import Section\n"
        "def f() -> None:\n"
        "    from sqlmodel import Session, select\n"
    )
    assert imported_names(ast.parse(source), "casebook.sub.module") == [
        (1, "hotline.app.config"),
        (2, "cli.main"),
        (3, "casebook.sub.sibling"),
        (4, "casebook.settings.Section"),
        (6, "sqlmodel.Session"),
        (6, "sqlmodel.select"),
    ]
