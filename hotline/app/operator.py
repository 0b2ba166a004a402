"""Operator commands: what the service account runs on the server host with the site's config
(`hotline db upgrade` with the site's keys, `asterisk config`, `prompts build`, `transcribe FILE`
and the first admin's `agents add --bootstrap`; the long-running processes are
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
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from casebook import agents as agent_service
from casebook import signin, site_secrets
from casebook.clock import utcnow
from casebook.db import Database, upgrade_schema
from casebook.errors import CasebookError, DatabaseUnavailable
from casebook.models import Agent
from hotline.app.components import ServeError
from hotline.app.config import ConfigError, Settings
from hotline.app.demo import DemoError
from ivr_flows import FlowError, SpeechError, build_prompts, load_flow, render_asterisk_config
from ivr_flows.prompts import PromptReport
from transcription import AudioError, ModelError, transcribe

REFUSED = 1
CONFIG = 2
DATABASE = 3


class OperatorError(Exception):
    """An operator command cannot go on; phrased for the operator (one line)."""

    def __init__(self, message: str, exit_code: int = REFUSED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Failure:
    """A known failure as the CLI prints it: ``label: message`` and the exit code."""

    label: str
    message: str
    exit_code: int


def known_failure(exc: BaseException) -> Failure | None:
    """What an operator command's exception means for the operator; None for a bug."""
    if isinstance(exc, ConfigError):
        return Failure("config error", str(exc), CONFIG)
    if isinstance(exc, OperatorError):
        return Failure("error", str(exc), exc.exit_code)
    if isinstance(exc, ServeError):
        return Failure("error", str(exc), REFUSED)
    if isinstance(exc, FlowError | SpeechError | AudioError | ModelError | DemoError):
        return Failure("error", str(exc), REFUSED)
    if isinstance(exc, DatabaseUnavailable):
        return Failure("database unavailable", str(exc), DATABASE)
    if isinstance(exc, CasebookError):
        return Failure("refused", str(exc), REFUSED)
    if isinstance(exc, SQLAlchemyError):
        # A schema older than the code, a permission, a constraint: one line, not a traceback.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Failure("database error", f"{reason} (try: hotline db upgrade)", DATABASE)
    return None


# --- the site's database and files ----------------------------------------------------------------


def upgrade_database(settings: Settings) -> str:
    """Create or upgrade the schema; the database's address without its password."""
    db = Database(settings.database, migrate=False, create=True)
    try:
        db.retrying(lambda: upgrade_schema(db.engine))
        return db.safe_url
    finally:
        db.dispose()


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
        raise OperatorError(str(exc), CONFIG) from exc


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
    facts: str  # language, durations, segments, model: one line


def transcribe_file(settings: Settings, path: Path) -> Transcribed:
    result = transcribe(path, settings.transcription)
    facts = (
        f"{result.language} · {result.duration:.1f} s of audio in "
        f"{result.processing_seconds:.1f} s · {len(result.segments)} segments · "
        f"{result.model_name}"
    )
    return Transcribed(result.to_dict(), result.marked_words(), result.no_speech, facts)


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
