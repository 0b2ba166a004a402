"""Start-up checks for `hotline serve` and the single processes: each says what is wrong and
what to do about it, before anything starts, instead of a traceback minutes later."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from casebook import site_secrets
from casebook.audit import checkpoint_file
from casebook.db import Database, NotServable
from casebook.errors import DatabaseUnavailable
from casebook.roles import INSUFFICIENT_PRIVILEGE
from hotline.ami import AmiError, AmiLoginError, AmiSession, client_tls
from hotline.app.config import Settings
from hotline.app.http_server import ApiStartError, server_tls, socket_group_id, socket_state
from transcription.model import ModelError, device_and_compute_type, resolve


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str


def check_database(settings: Settings) -> Check:
    try:
        db = Database(settings.database)
    except NotServable as exc:  # the schema is behind, or the role was never granted
        return Check("database", False, str(exc))
    except DatabaseUnavailable as exc:
        return Check("database", False, f"{exc}; check database.url and that the server runs")
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise
        reason = str(exc.orig).strip().splitlines()[0]
        return Check(
            "database",
            False,
            f"{reason}: the runtime role lacks its privileges; as the owner, run "
            "hotline db roles --apply",
        )
    try:
        owner = None if db.sqlite_file is not None else db.retrying(db.connected_owner)
    finally:
        db.dispose()
    if owner is not None:
        # Allowed (a site with one role), but the server could then rewrite the audit log.
        return Check(
            "database",
            True,
            f"{db.safe_url}, schema up to date; connected as {owner}, which owns the tables: "
            "give the server a runtime role (hotline db roles)",
        )
    return Check("database", True, f"{db.safe_url}, schema up to date")


def check_secrets(settings: Settings) -> Check:
    """Every process of the server signs audit checkpoints and may number cases: the site's
    keys must be there, safe, and the checkpoint file writable."""
    try:
        for name in site_secrets.SITE_KEYS:
            site_secrets.load_key(settings.secrets, name)
    except site_secrets.SiteSecretError as exc:
        return Check("secrets", False, str(exc))
    path = checkpoint_file(settings)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.close(descriptor)
    except OSError as exc:
        return Check(
            "secrets",
            False,
            f"the audit checkpoint file {path} is not writable ({exc.strerror}); fix "
            "audit.checkpoint_file or its folder's permissions",
        )
    return Check("secrets", True, f"{settings.secrets.folder}: site keys in place")


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
    """Which model, on which device, in which precision the worker will run (files verified)."""
    try:
        model = resolve(settings.transcription)
        device, compute_type = device_and_compute_type(settings.transcription)
    except ModelError as exc:
        return Check("model", False, str(exc))
    return Check("model", True, f"{model.name} at {model.path} on {device} ({compute_type})")


# The longest path an AF_UNIX socket address holds on Linux (sun_path is 108 bytes with its NUL).
SOCKET_PATH_MAX = 107


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_socket(settings: Settings) -> Check:
    """The API's Unix socket can be made: its folder writable (or creatable), its group known,
    no other server on it, a path short enough for a socket address."""
    path = settings.server.socket
    try:
        group_id = socket_group_id(settings.server)
        state = socket_state(path)
    except ApiStartError as exc:
        return Check("socket", False, str(exc))
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        return Check(
            "socket", False, f"{path} is longer than a socket path may be; shorten server.socket"
        )
    if state == "live":
        return Check("socket", False, f"another server is running on {path}")
    if state == "not a socket":
        return Check("socket", False, f"{path} exists and is not a socket; check server.socket")
    folder = _nearest_existing(path.parent)
    if not os.access(folder, os.W_OK | os.X_OK):
        return Check(
            "socket",
            False,
            f"{folder} is not writable by this account; fix server.socket or its permissions",
        )
    group = "" if group_id is None else f", group {settings.server.socket_group}"
    stale = " (a stale socket there is replaced)" if state == "stale" else ""
    return Check("socket", True, f"{path}, mode 0660{group}{stale}")


def check_tls(settings: Settings) -> Check:
    """What TCP listens with: HTTPS with a certificate and key that load, or plain HTTP where
    the settings allow it (loopback, or allow_plain_http)."""
    server = settings.server
    if server.tcp_host is None:
        return Check("tcp", True, "off (server.tcp_host is null): the Unix socket only")
    address = f"{server.tcp_host}:{server.tcp_port}"
    if not server.tls:
        return Check("tcp", True, f"plain HTTP on {address} (no tls_cert/tls_key)")
    try:
        server_tls(server)
    except ApiStartError as exc:
        return Check("tcp", False, str(exc))
    return Check("tcp", True, f"HTTPS on {address} (TLS 1.2+, {server.tls_cert})")


CHECKS: dict[str, list[Callable[[Settings], Check]]] = {
    "listener": [check_ami, check_recordings],
    "agi": [check_recordings],
    "worker": [check_model],
    "scheduler": [],
    "api": [check_socket, check_tls],
}


def run_checks(settings: Settings, components: list[str]) -> list[Check]:
    """The database and the site's keys first (everything needs them), then what each component
    needs, once each."""
    wanted: list[Callable[[Settings], Check]] = [check_database, check_secrets]
    for name in components:
        wanted += [check for check in CHECKS[name] if check not in wanted]
    return [check(settings) for check in wanted]
