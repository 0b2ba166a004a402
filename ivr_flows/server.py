"""The FastAGI server: Asterisk's ``AGI(agi://host:port/hotline)`` lands here, one thread a call.

``AgiServer`` has ``start``/``stop``; ``hotline agi`` and ``hotline serve`` start it and stop it
on SIGTERM, letting calls in progress finish.

Bounds (config ``agi``): a peer outside ``allowed_peers`` (loopback by default) is closed at
once; beyond ``max_connections`` calls in progress a new connection is closed before any thread
is made for it (Asterisk's AGI() then fails and the dialplan routes the caller to an agent);
a session is cut after ``session_seconds`` whatever trickles in.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from asterisk.agi import AGIHangup

from ivr_flows.agi import AsteriskSilent, HotlineAGI
from ivr_flows.backend import IvrBackend
from ivr_flows.engine import FlowRunner
from ivr_flows.flow import Flow, load_flow
from ivr_flows.settings import IvrConfig, is_loopback

log = logging.getLogger(__name__)
# How often the accept loop looks for a stop request: the longest stop() waits for it.
POLL_SECONDS = 0.05
# How long a cut call gets to notice and unwind (its backend call may still be finishing).
CUT_SECONDS = 5.0


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    # Call threads never keep the process alive; stop() itself waits for them to end.
    daemon_threads = True
    # Python's default backlog of 5 makes a burst of calls wait for the kernel's SYN retries
    # (1-3 s of dead air, or a refused AGI after a stop): take what the system allows.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: tuple[str, int], app: AgiServer) -> None:
        self.app = app
        super().__init__(address, _Handler)

    def process_request(  # type: ignore[override]  # a TCP server's requests are sockets
        self, request: socket.socket, client_address: tuple[str, int]
    ) -> None:
        # Runs on the accept thread: a refused connection never gets a thread of its own.
        if not self.app.admit(request, client_address):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except RuntimeError:  # no thread could be started: refuse this call, keep serving
            log.warning("FastAGI: no thread for a call from %s; refused", client_address[0])
            self.app.release(request)
            self.shutdown_request(request)

    def service_actions(self) -> None:
        # Called by serve_forever every poll: the place to cut sessions past their time.
        self.app.expire_sessions()


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        self.server.app.handle_connection(self.request, self.client_address)


@dataclass
class _Session:
    peer: str
    deadline: float  # time.monotonic() after which the session is cut


class AgiServer:
    def __init__(
        self,
        settings: IvrConfig,
        backend: IvrBackend,
        *,
        flow: Flow | None = None,
        port: int | None = None,
    ) -> None:
        """``port`` overrides agi.port (0 picks a free one, for tests)."""
        self.settings = settings
        self.flow = flow if flow is not None else load_flow(settings.ivr.flow_file)
        self.runner = FlowRunner(
            self.flow,
            backend,
            recordings_root=settings.recordings.root,
            zone=settings.business_hours.zone,
            wrong_per_call=settings.status_by_phone.wrong_per_call,
        )
        self._port = settings.agi.port if port is None else port
        self._tcp: _TCPServer | None = None
        self._thread: threading.Thread | None = None
        self._open: dict[socket.socket, _Session] = {}
        self._refused = 0  # connections refused since the server was last full
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._peers = settings.agi.peer_networks()

    @property
    def address(self) -> tuple[str, int]:
        if self._tcp is None:
            raise RuntimeError("the FastAGI server is not bound")
        host, port = self._tcp.server_address[:2]
        return str(host), int(port)

    def start(self) -> tuple[str, int]:
        """Bind and serve in a background thread; returns the bound address."""
        # Asterisk writes the messages here; on one machine, make sure the folder exists.
        Path(self.settings.recordings.root).mkdir(parents=True, exist_ok=True)
        self._tcp = _TCPServer((self.settings.agi.host, self._port), self)
        address = self.address
        log.info("FastAGI listening on %s:%s", *address)
        if self.settings.agi.allowed_peers is None and not is_loopback(address[0]):
            log.warning("FastAGI on %s admits loopback peers only: list the Asterisk hosts "
                        "in agi.allowed_peers", address[0])  # fmt: skip
        self._thread = threading.Thread(
            target=self._tcp.serve_forever, args=(POLL_SECONDS,), name="fastagi", daemon=True
        )
        self._thread.start()
        return address

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, let calls in progress finish for ``grace`` s, then cut them."""
        if self._tcp is None:
            return
        self._tcp.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close(grace)

    def _close(self, grace: float) -> None:
        if self._tcp is None:
            return
        with self._idle:
            self._idle.wait_for(lambda: not self._open, timeout=grace)
            for sock in self._open:
                # Unblocks the call's pending read: it ends as if Asterisk had gone.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._idle.wait_for(lambda: not self._open, timeout=CUT_SECONDS)
        self._tcp.server_close()
        self._tcp = None

    def __enter__(self) -> AgiServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- admission and bounds (the accept thread) -----------------------------------------

    def _allowed(self, host: str) -> bool:
        address = ipaddress.ip_address(host.split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._peers)

    def admit(self, sock: socket.socket, peer: tuple[str, int]) -> bool:
        """Whether a new connection is served; it then holds one of agi.max_connections."""
        if not self._allowed(peer[0]):
            log.warning("FastAGI: connection from %s refused: not in agi.allowed_peers", peer[0])
            return False
        agi = self.settings.agi
        with self._lock:
            if len(self._open) < agi.max_connections:
                self._open[sock] = _Session(peer[0], time.monotonic() + agi.session_seconds)
                return True
            self._refused += 1
            first = self._refused == 1
        if first:  # one line per overload, not one per connection of a flood
            log.warning("FastAGI: %d calls in progress (agi.max_connections): refusing new "
                        "connections until one ends", agi.max_connections)  # fmt: skip
        return False

    def release(self, sock: socket.socket) -> None:
        with self._idle:
            self._open.pop(sock, None)
            refused, self._refused = self._refused, 0
            self._idle.notify_all()
        if refused:
            log.info("FastAGI: accepting calls again (%d connections refused)", refused)

    def expire_sessions(self) -> None:
        """Cut every session past agi.session_seconds: a per-read timeout alone lets one byte
        every few seconds hold a thread for ever."""
        now = time.monotonic()
        with self._lock:
            expired = [(s, session) for s, session in self._open.items() if session.deadline < now]
            for _, session in expired:
                session.deadline = math.inf  # cut once
        for sock, session in expired:
            log.warning("FastAGI: session from %s cut after agi.session_seconds (%g s)",
                        session.peer, self.settings.agi.session_seconds)  # fmt: skip
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_connection(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        sock.settimeout(self.settings.agi.command_timeout)
        try:
            self._run_call(sock, peer)
        finally:
            self.release(sock)

    def _run_call(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        uniqueid = "?"
        try:
            with sock.makefile("rb") as rfile, sock.makefile("wb") as wfile:
                agi = HotlineAGI(rfile, wfile, sock)
                uniqueid = agi.env.get("agi_uniqueid", "?")
                log.info("call %s from %s: %s", uniqueid, peer[0], agi.env.get("agi_request"))
                self.runner.run(agi)
        except AGIHangup:
            log.info("call %s: caller hung up", uniqueid)
        except AsteriskSilent:
            log.warning("call %s: Asterisk stopped answering, session dropped", uniqueid)
        except OSError as exc:
            log.warning("call %s: connection lost (%s)", uniqueid, exc)
        except Exception:
            # One broken call must never take the server down with it.
            log.exception("call %s: IVR failed", uniqueid)
