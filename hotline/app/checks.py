"""Start-up checks for `hotline serve` and the single processes: each says what is wrong and
what to do about it, before anything starts, instead of a traceback minutes later."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from casebook.db import Database
from casebook.errors import DatabaseUnavailable
from hotline.ami import AmiError, AmiLoginError, AmiSession, client_tls
from hotline.app.config import Settings
from transcription.model import ModelError, resolve


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str


def check_database(settings: Settings) -> Check:
    try:
        db = Database(settings.database)
    except DatabaseUnavailable as exc:
        return Check("database", False, f"{exc}; check database.url and that the server runs")
    url = db.safe_url
    db.dispose()
    return Check("database", True, f"{url}, schema up to date")


def check_recordings(settings: Settings) -> Check:
    root = settings.recordings.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root):
            pass
    except OSError as exc:
        return Check(
            "recordings",
            False,
            f"{root} is not writable ({exc.strerror}); fix recordings.root or its permissions",
        )
    return Check("recordings", True, f"{root} writable")


def check_ami(settings: Settings) -> Check:
    ami = settings.ami
    try:
        tls = client_tls(ami)
    except AmiError as exc:
        return Check("ami", False, str(exc))
    session = AmiSession.from_settings(ami, lambda *_: None, tls=tls)
    try:
        version = session.open()
        session.login(ami.username, ami.secret, ami.action_timeout, events=False)
        with contextlib.suppress(AmiError):
            session.request("Logoff", timeout=ami.action_timeout)
    except AmiLoginError as exc:
        return Check("ami", False, f"{exc}; check ami.username/ami.secret and manager.conf")
    except AmiError as exc:
        return Check(
            "ami", False, f"{exc}; is Asterisk running with manager.conf enabled (ami.host/port)?"
        )
    finally:
        session.close()
    return Check("ami", True, f"{ami.host}:{ami.port} (AMI {version}), logged in as {ami.username}")


def check_model(settings: Settings) -> Check:
    try:
        model = resolve(settings.transcription)
    except ModelError as exc:
        return Check("model", False, str(exc))
    return Check("model", True, f"{model.name} at {model.path}")


CHECKS: dict[str, list[Callable[[Settings], Check]]] = {
    "listener": [check_ami, check_recordings],
    "agi": [check_recordings],
    "worker": [check_model],
    "scheduler": [],
}


def run_checks(settings: Settings, components: list[str]) -> list[Check]:
    """The database first (everything needs it), then what each component needs, once each."""
    wanted: list[Callable[[Settings], Check]] = [check_database]
    for name in components:
        wanted += [check for check in CHECKS[name] if check not in wanted]
    return [check(settings) for check in wanted]
