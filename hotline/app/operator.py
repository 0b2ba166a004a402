"""Operator commands: what the service account runs on the server host with the site's config
(`hotline db upgrade` with the site's keys, `db roles`, `asterisk config`, `prompts build`,
`transcribe FILE` and the first admin's `agents add --bootstrap`; the long-running processes are
hotline.app.components'), and what their failures mean for the operator.

These are the only commands that read config.yaml, open the database or the recordings; people's
commands go through the server. The CLI imports this module inside the command's function, so a
person's command never loads what these need.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from casebook import agents as agent_service
from casebook import db as db_service
from casebook import roles, signin, site_secrets
from casebook.clock import utcnow
from casebook.db import Database
from casebook.errors import CasebookError, DatabaseUnavailable
from casebook.models import Agent
from casebook.roles import DEFAULT_RUNTIME_ROLE
from hotline.app.components import ServeError
from hotline.app.config import ConfigError, Settings
from hotline.app.demo import DemoError
from ivr_flows import FlowError, SpeechError, build_prompts, load_flow, render_asterisk_config
from ivr_flows.prompts import PromptReport
from transcription import AudioError, ModelError, transcribe
from transcription.model import PATH_MODEL, device_and_compute_type
from transcription.settings import TranscriptionSettings


class OperatorError(Exception):
    """An operator command cannot go on; phrased for the operator (one line)."""


# What kind of failure it is; the CLI's ExitCode turns each into the README's exit code.
FailureKind = Literal["refused", "config", "database"]


@dataclass(frozen=True)
class Failure:
    """A known failure as the CLI prints it: ``label: message``, and its kind."""

    label: str
    message: str
    kind: FailureKind


def known_failure(exc: BaseException) -> Failure | None:
    """What an operator command's exception means for the operator; None for a bug."""
    if isinstance(exc, ConfigError):
        return Failure("config error", str(exc), "config")
    if isinstance(exc, OperatorError | ServeError):
        return Failure("error", str(exc), "refused")
    if isinstance(exc, FlowError | SpeechError | AudioError | ModelError | DemoError):
        return Failure("error", str(exc), "refused")
    if isinstance(exc, DatabaseUnavailable):
        return Failure("database unavailable", str(exc), "database")
    if isinstance(exc, CasebookError):
        return Failure("refused", str(exc), "refused")
    if isinstance(exc, SQLAlchemyError):
        # A schema older than the code, a permission, a constraint: one line, not a traceback.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Failure("database error", f"{reason} (try: hotline db upgrade)", "database")
    return None


# --- the site's database and files ----------------------------------------------------------------


def upgrade_database(settings: Settings) -> list[str]:
    """Create or upgrade the schema as the owner; what was done, a line each."""
    done = db_service.upgrade_database(settings.database)
    lines = [f"schema up to date: {done.url} ({done.revision})"]
    if done.granted:
        lines.append(f"runtime role {done.runtime_role}: privileges granted (hotline db roles)")
    elif done.runtime_role is not None:
        lines.append(
            f"runtime role {done.runtime_role} does not exist yet: create it with "
            "hotline db roles --apply"
        )
    return lines


@dataclass(frozen=True)
class RolesSql:
    """`hotline db roles`: the SQL, or why there is none (SQLite); whether it was run."""

    sql: str | None
    applied: bool
    runtime_role: str | None
    note: str


SQLITE_HAS_NO_ROLES = (
    "لا أدوار في SQLite، لا شيء لفعله: ملف واحد تحميه صلاحياته "
    "(SQLite has no roles, nothing to do: one file, its permissions are the boundary; "
    "keep it and its folder the hotline account's alone)"
)


def database_roles(settings: Settings, runtime_role: str | None, *, apply: bool) -> RolesSql:
    """The SQL that gives the runtime role (``runtime_role``, else database.url's user when
    database.owner_url is set, else hotline_runtime) its privileges, read from the database as
    the owner; with ``apply``, run as the owner."""
    if settings.database.url.startswith("sqlite"):
        return RolesSql(None, False, None, SQLITE_HAS_NO_ROLES)
    role = runtime_role or db_service.runtime_role(settings.database) or DEFAULT_RUNTIME_ROLE
    owner = Database(db_service.owner_settings(settings.database), migrate=False)
    try:

        def work(connection: Connection) -> str:
            catalog = (
                roles.apply(connection, role)
                if apply
                else roles.plan(connection, role, applying=False)
            )
            return roles.render(catalog, role)

        sql = owner.retrying(lambda: _in_transaction(owner, work))
    finally:
        owner.dispose()
    if apply:
        note = f"applied as the owner: {role} has its privileges; set its password with ALTER ROLE"
    else:
        note = f"to run it as the owner: hotline db roles --apply (runtime role {role})"
    if settings.database.owner_url is None:
        # A site with one role: the server still connects as the owner until the config says.
        note += f"; then move database.url to database.owner_url and point database.url at {role}"
    return RolesSql(sql, apply, role, note)


def _in_transaction(db: Database, work: Callable[[Connection], str]) -> str:
    with db.engine.begin() as connection:
        return work(connection)


def create_site_keys(settings: Settings) -> Path:
    """The server's keys (audit checkpoints, references) in the secrets folder, made where
    missing and checked where present; the folder. Only here: a process that merely runs never
    makes a key (a lost key must be noticed, not replaced)."""
    site_secrets.create_site_keys(settings.secrets)
    return settings.secrets.folder


def asterisk_config(settings: Settings) -> str:
    """The site's extensions.conf contexts, queues.conf queue (members from the agents table)
    and manager.conf user."""
    db = Database(settings.database)
    try:
        extensions = db.run(agent_service.queue_extensions)
    finally:
        db.dispose()
    try:
        return render_asterisk_config(settings, extensions)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def build_site_prompts(
    settings: Settings, voice: str | None, progress: Callable[[str], None]
) -> tuple[Path, PromptReport]:
    """Render the IVR's prompts into the site's sounds folder; where they went and the report."""
    report = build_prompts(
        settings.ivr.sounds_dir,
        flow=load_flow(settings.ivr.flow_file),
        language=settings.ivr.language,
        voice=voice or settings.ivr.voice,
        progress=progress,
    )
    return settings.ivr.sounds_dir / settings.ivr.language, report


@dataclass(frozen=True)
class Transcribed:
    """One file's transcript, as `hotline transcribe` shows it."""

    data: dict[str, Any]  # the whole result, for --json
    marked_words: list[tuple[str, bool]]
    no_speech: bool
    facts: str  # language, durations, segments, model, device: one line
    numbers: list[tuple[str, str]]  # (digits, words said) for each number the text has as digits


def transcribe_file(settings: Settings, path: Path, model_path: Path | None = None) -> Transcribed:
    """``model_path``: any CTranslate2 Whisper directory instead of the configured model."""
    # One file is one pass, on every core (the worker's default shares them out among passes).
    options = settings.transcription.model_copy(update={"concurrency": 1})
    if model_path is not None:
        options = TranscriptionSettings.model_validate(
            {**options.model_dump(), "model": PATH_MODEL, "model_path": model_path.absolute()}
        )
    result = transcribe(path, options)
    device, compute_type = device_and_compute_type(options)
    facts = (
        f"{result.language} · {result.duration:.1f} s of audio in "
        f"{result.processing_seconds:.1f} s · {len(result.segments)} segments · "
        f"{result.model_name} on {device} ({compute_type})"
    )
    numbers = [(number.digits, number.spoken) for number in result.numbers]
    return Transcribed(result.to_dict(), result.marked_words(), result.no_speech, facts, numbers)


# --- the first admin ------------------------------------------------------------------------------


def check_bootstrap_user(site_folder: Path, uid: int | None = None) -> str:
    """The OS user running this, when it owns ``site_folder`` (the folder of the server's socket,
    which the server's account creates); otherwise OperatorError. Before the server's first
    start the folder may not exist yet: then its nearest existing parent decides (the site
    folder for the default var/hotline.sock; /run, hence root only, for /run/hotline). Checked
    by uid, which the environment cannot change (LOGNAME and USER can); returns the account's
    name for the audit log."""
    me = os.getuid() if uid is None else uid
    folder = site_folder
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        owner = folder.stat().st_uid
    except OSError as exc:
        raise OperatorError(
            f"the site folder {folder} cannot be read ({exc.strerror}): run --bootstrap as "
            "the account that runs the hotline server"
        ) from exc
    if owner != me:
        raise OperatorError(
            f"--bootstrap is for the account that owns the site folder {folder} "
            f"({account_name(owner)}), not {account_name(me)}: run it as that account "
            "(e.g. sudo -u hotline hotline agents add ... --bootstrap)"
        )
    return account_name(me)


def account_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def bootstrap(
    settings: Settings,
    site_folder: Path,
    *,
    username: str,
    display_name: str,
    password: str,
    roles: tuple[str, ...] = ("admin",),
    uid: int | None = None,
) -> Agent:
    """The site's first admin, created on the server host without the server (the service
    account alone can read the config and the database): allowed only to the owner of
    ``site_folder`` and only while the site has no admin (casebook's rule)."""
    os_user = check_bootstrap_user(site_folder, uid)
    db = Database(settings.database)
    try:
        return db.run(
            lambda session: signin.bootstrap_admin(
                session,
                settings,
                username=username,
                display_name=display_name,
                password=password,
                os_user=os_user,
                now=utcnow(),
                roles=roles,
            )
        )
    finally:
        db.dispose()


def site_folder(settings: Settings) -> Path:
    """The folder of the server's socket: the server's account creates and owns it."""
    return settings.server.socket.parent
