"""The ``api`` component: the HTTP API (hotline.app.api) on uvicorn, in threads of the server
process, which keeps its own signal handling (run_until_signal stops it like the others).

It listens on the Unix socket ``server.socket`` (mode 0660, group ``server.socket_group``: the
people who may use the CLI on this host) and, if ``server.tcp_host`` is set, on TCP, with TLS
1.2 or later when a certificate is configured. The sockets are bound here, before uvicorn
runs, so that a wrong address or a second server is a clear error at start-up, and the Unix
socket has its mode and group before it accepts anyone.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import shutil
import socket
import ssl
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Literal

import uvicorn

from casebook.db import Database
from hotline.app.config import Settings
from hotline.app.server_settings import ServerSettings

log = logging.getLogger(__name__)

BACKLOG = 128
START_SECONDS = 15.0
# Requests still running when asked to stop get this long (a callback being dialled blocks
# its request until the attempt's result); then their connections are closed.
GRACEFUL_SECONDS = 30


class ApiStartError(Exception):
    """The API cannot listen; the message says where and what to do (one line)."""


def socket_group_id(settings: ServerSettings) -> int | None:
    if settings.socket_group is None:
        return None
    try:
        return grp.getgrnam(settings.socket_group).gr_gid
    except KeyError:
        raise ApiStartError(
            f"server.socket_group {settings.socket_group!r}: no such group on this host"
        ) from None


def prepare_socket_folder(folder: Path, group_id: int | None) -> None:
    """The socket's folder; created 0750 (and in the socket's group, so its members can reach
    the socket) when missing."""
    if folder.is_dir():
        return
    try:
        folder.mkdir(mode=0o750, parents=True)
        folder.chmod(0o750)  # mkdir's mode is filtered by the umask
        if group_id is not None:
            os.chown(folder, -1, group_id)
    except OSError as exc:
        raise ApiStartError(
            f"cannot create the socket folder {folder} ({exc.strerror}); fix server.socket "
            "or the folder's permissions"
        ) from exc


SocketState = Literal["absent", "stale", "live", "not a socket"]


def socket_state(path: Path) -> SocketState:
    """What is at ``path``: nothing, a socket nobody listens on (its server was killed), a
    live one, or something else."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return "absent"
    if not stat.S_ISSOCK(mode):
        return "not a socket"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2.0)
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            return "stale"
        except FileNotFoundError:
            return "absent"
        except OSError as exc:
            raise ApiStartError(f"cannot check the socket {path}: {exc.strerror}") from exc
    return "live"


def replace_stale_socket(path: Path) -> None:
    """Remove a socket file nobody listens on; refuse to touch a live one or anything that is
    not a socket."""
    state = socket_state(path)
    if state == "stale":
        path.unlink(missing_ok=True)
        log.info("replaced the stale socket %s", path)
    elif state == "live":
        raise ApiStartError(f"another server is running on {path}")
    elif state == "not a socket":
        raise ApiStartError(
            f"{path} exists and is not a socket: not replaced (check server.socket)"
        )


def unix_listener(settings: ServerSettings) -> socket.socket:
    """The Unix socket, mode 0660 in the configured group, listening."""
    path = settings.socket
    group_id = socket_group_id(settings)
    prepare_socket_folder(path.parent, group_id)
    replace_stale_socket(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        # Before listen(): until then nobody can connect, whatever mode bind() gave the file.
        path.chmod(0o660)
        if group_id is not None:
            os.chown(path, -1, group_id)
        listener.listen(BACKLOG)
    except OSError as exc:
        listener.close()
        reason = exc.strerror or str(exc)
        raise ApiStartError(f"cannot listen on {path} ({reason}); check server.socket") from exc
    return listener


def tcp_listener(host: str, port: int) -> socket.socket:
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ApiStartError(f"server.tcp_host {host!r}: {exc.strerror}") from exc
    listener = socket.socket(family, kind, protocol)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(BACKLOG)
    except OSError as exc:
        listener.close()
        raise ApiStartError(
            f"cannot listen on {host}:{port} ({exc.strerror}); check server.tcp_host/tcp_port"
        ) from exc
    return listener


def server_tls(settings: ServerSettings) -> ssl.SSLContext:
    """TLS 1.2 or later with the configured certificate chain and key."""
    assert settings.tls_cert is not None and settings.tls_key is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ApiStartError(
            f"cannot load server.tls_cert {settings.tls_cert} / tls_key {settings.tls_key} "
            f"({reason})"
        ) from exc
    return context


class _Served:
    """One uvicorn server on one listening socket, in a thread of its own."""

    def __init__(self, app: Any, listener: socket.socket, tls: ssl.SSLContext | None) -> None:
        config = uvicorn.Config(
            app,
            lifespan="off",
            # The sign-in limit per address must see the real peer: no forwarded header.
            proxy_headers=False,
            server_header=False,
            log_config=None,  # the process's logging (configure_logging) applies
            # Every access that matters is in the audit log with the person; request lines
            # would copy listening reasons and references into the system log.
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )
        config.load()
        config.ssl = tls  # our context (TLS >= 1.2); uvicorn's options cannot say that
        self.listener = listener
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [listener]}, name="api", daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        # uvicorn says nothing when it is up but sets ``started``: polled, briefly.
        pause = threading.Event()
        for _ in range(int(START_SECONDS / 0.02)):
            if self.server.started or not self.thread.is_alive():
                break
            pause.wait(0.02)
        if not self.server.started:
            self.stop()
            raise ApiStartError("the HTTP API did not start (see the log above)")

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join()
        self.listener.close()


class ApiServer:
    """The ``api`` component."""

    name = "api"

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._served: list[_Served] = []
        self._copies: Path | None = None
        self._socket_inode: int | None = None

    @property
    def socket_path(self) -> Path:
        return self.settings.server.socket

    @property
    def copies_folder(self) -> Path | None:
        """The private folder recording copies pass through while being sent (while running)."""
        return self._copies

    def start(self) -> None:
        server = self.settings.server
        tls = server_tls(server) if server.tls else None
        listeners = [unix_listener(server)]
        self._socket_inode = self.socket_path.stat().st_ino
        try:
            if server.tcp_host is not None:
                listeners.append(tcp_listener(server.tcp_host, server.tcp_port))
            # Here, not at the top: the start-up checks use this module's socket helpers and
            # need no web framework.
            from hotline.app.api import build_api

            self._copies = Path(tempfile.mkdtemp(prefix="hotline-audio-"))
            app = build_api(self.db, self.settings, copies=self._copies)
            for listener in listeners:
                served = _Served(app, listener, None if listener.family == socket.AF_UNIX else tls)
                self._served.append(served)
                served.start()
        except BaseException:
            self.stop()
            for listener in listeners:
                listener.close()
            raise
        log.info("HTTP API on %s%s", server.socket, self._tcp_note())

    def _tcp_note(self) -> str:
        server = self.settings.server
        if server.tcp_host is None:
            return ""
        scheme = "https" if server.tls else "http"
        return f" and {scheme}://{server.tcp_host}:{server.tcp_port}"

    def stop(self) -> None:
        for served in reversed(self._served):
            served.stop()
        self._served.clear()
        # Only our socket file: another server may have replaced it since.
        with contextlib.suppress(FileNotFoundError):
            if self.socket_path.stat().st_ino == self._socket_inode:
                self.socket_path.unlink()
        self._socket_inode = None
        if self._copies is not None:
            shutil.rmtree(self._copies, ignore_errors=True)
            self._copies = None

    def state(self) -> dict[str, Any]:
        servers = [served.server for served in self._served]
        return {
            "socket": str(self.socket_path),
            "tcp": f"{self.settings.server.tcp_host}:{self.settings.server.tcp_port}"
            if self.settings.server.tcp_host is not None
            else None,
            "tls": self.settings.server.tls,
            "requests": sum(server.server_state.total_requests for server in servers),
            "connections": sum(len(server.server_state.connections) for server in servers),
        }
