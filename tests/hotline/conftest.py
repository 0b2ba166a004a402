"""Test doubles for the AMI tests: byte-exact TCP peers on loopback, and a collecting sink."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Self

import pytest

from hotline.ami import AmiClient
from hotline.ami_protocol import AmiFramer, AmiMessage
from hotline.ami_settings import AmiSettings
from hotline.tracker import FinishedCallsOnly, TrackedCall

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
# The Login's ActionID in the recorded streams (what the client sent when they were captured).
RECORDED_LOGIN_ID = "login-1"
# Safety nets only: no test asserts how long anything took.
PATIENCE = 20.0


class CollectingSink(FinishedCallsOnly):
    """A ``CallSink`` that remembers every call and lets a test wait for a count."""

    def __init__(self) -> None:
        self.calls: list[TrackedCall] = []
        self._cond = threading.Condition()

    def call_finished(self, call: TrackedCall) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = PATIENCE) -> list[TrackedCall]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.calls) >= count, timeout)
            return list(self.calls)


class RecordingHandler:
    """An ``AmiHandler`` that keeps events and snapshots and can wait for one by name."""

    def __init__(self) -> None:
        self.events: list[AmiMessage] = []
        self.snapshots: list[list[AmiMessage]] = []
        self._cond = threading.Condition()

    def on_event(self, message: AmiMessage, received_at: datetime) -> None:
        with self._cond:
            self.events.append(message)
            self._cond.notify_all()

    def on_channels(self, channels: Sequence[AmiMessage], received_at: datetime) -> None:
        with self._cond:
            self.snapshots.append(list(channels))
            self._cond.notify_all()

    def wait_event(self, name: str, timeout: float = PATIENCE) -> AmiMessage | None:
        with self._cond:
            self._cond.wait_for(lambda: any(e.name == name for e in self.events), timeout)
            return next((e for e in self.events if e.name == name), None)


Responder = Callable[[AmiMessage, socket.socket], None]


class LoopbackServer:
    """A TCP peer on loopback for one test: accepts every client on a thread of its own and
    hands it to ``_serve`` (over TLS when given a server ``tls`` context, as Asterisk with
    manager.conf tlsenable); leaving the ``with`` block closes everything."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.connections = 0
        self._clients: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone does not on Linux.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for client in self._clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            self._clients.append(client)
            threading.Thread(target=self._begin, args=(client,), daemon=True).start()

    def _begin(self, client: socket.socket) -> None:
        if self._tls is not None:
            try:
                client = self._tls.wrap_socket(client, server_side=True)
            except OSError:
                return  # the client refused our certificate
            self._clients.append(client)
        self._serve(client)

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError


class ScriptedAmiServer(LoopbackServer):
    """A loopback AMI peer: sends the banner, then lets ``respond`` answer each action.

    ``respond`` writes raw bytes to the socket itself, so a test states the exact wire bytes.
    """

    def __init__(self, respond: Responder, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(tls)
        self._respond = respond
        self.actions: list[AmiMessage] = []

    def _serve(self, client: socket.socket) -> None:
        framer = AmiFramer(expect_banner=False)
        with contextlib.suppress(OSError):
            client.sendall(BANNER)
            while data := client.recv(4096):
                for action in framer.feed(data):
                    self.actions.append(action)
                    self._respond(action, client)


def reply(client: socket.socket, *lines: str) -> None:
    """Write one CRLF block made of these lines."""
    client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def answer_login(action: AmiMessage, client: socket.socket) -> bool:
    """Answer Login as Asterisk 22 does; True if the action was a Login."""
    if action.name != "Login":
        return False
    reply(
        client,
        "Response: Success",
        f"ActionID: {action.action_id}",
        "Message: Authentication accepted",
    )
    reply(client, "Event: FullyBooted", "Privilege: system,all", "Status: Fully Booted")
    return True


class ReplayServer(LoopbackServer):
    """Serves a recorded server stream: the banner, then after the client's Login block every
    remaining byte, cut at random boundaries. The connection then stays open (Asterisk would)."""

    def __init__(
        self, recording: bytes, login_offset: int, seed: int, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(tls)
        self._recording = recording
        self._login_offset = login_offset
        self._rng = random.Random(seed)

    def _serve(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(OSError):
            client.sendall(self._recording[: self._login_offset])
            received = b""
            while b"\r\n\r\n" not in received:
                data = client.recv(4096)
                if not data:
                    return
                received += data
            # Asterisk answers the Login with the client's own ActionID.
            login = AmiFramer(expect_banner=False).feed(received)[0]
            rest = self._recording[self._login_offset :].replace(
                f"ActionID: {RECORDED_LOGIN_ID}\r\n".encode(),
                f"ActionID: {login.action_id}\r\n".encode(),
                1,
            )
            position = 0
            while position < len(rest):
                size = self._rng.randint(1, 700)
                client.sendall(rest[position : position + size])
                position += size


def fast_settings(port: int, **overrides: object) -> AmiSettings:
    """Settings for loopback tests: short waits so failures surface quickly."""
    values: dict[str, object] = {
        "port": port,
        "connect_timeout": 2.0,
        "action_timeout": 2.0,
        "keepalive_interval": 30.0,
        "reconnect_initial_delay": 0.01,
        "reconnect_max_delay": 0.1,
    }
    values.update(overrides)
    return AmiSettings.model_validate(values)


def wait_until(condition: Callable[[], bool], timeout: float = PATIENCE) -> bool:
    """Poll a condition that no event signals; the timeout is a safety net only."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        pause.wait(0.01)
    return False


@contextlib.contextmanager
def running(client: AmiClient) -> Iterator[threading.Event]:
    """Run ``client`` in a thread for the duration of the block; re-raise what it raised."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            client.run(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(PATIENCE)
    assert not thread.is_alive(), "the AMI client did not stop"
    if errors:
        raise errors[0]


@pytest.fixture
def sink() -> CollectingSink:
    return CollectingSink()


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for ``asterisk.test`` (its own CA), its key, and another CA's
    certificate that did not sign it."""

    certificate: Path
    key: Path
    other_ca: Path

    def server(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, self.key)
        return context


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make the test certificates")
    folder = tmp_path_factory.mktemp("tls")

    def self_signed(name: str) -> tuple[Path, Path]:
        certificate, key = folder / f"{name}.pem", folder / f"{name}.key"
        subprocess.run(
            [
                *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
                *("-keyout", str(key), "-out", str(certificate), "-subj", f"/CN={name}"),
                *("-addext", f"subjectAltName=DNS:{name}"),
            ],
            check=True,
            capture_output=True,
        )
        return certificate, key

    certificate, key = self_signed("asterisk.test")
    other, _ = self_signed("someone-else.test")
    return TlsFiles(certificate, key, other)
