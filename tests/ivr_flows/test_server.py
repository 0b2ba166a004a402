"""The FastAGI server's bounds: connections, a session's whole time, who may connect."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from hotline.app.config import Settings
from ivr_flows.server import AgiServer
from tests.ivr_flows.fake_asterisk import Caller, place_call
from tests.ivr_flows.memory_backend import MemoryBackend

ENV = b"agi_network: yes\nagi_uniqueid: 1.1\nagi_arg_1: 1.1\n\n"
WAIT = 10.0  # a safety net: each wait below ends as soon as what it waits for happens


def wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes without sending anything; False when it starts the IVR."""
    sock.settimeout(WAIT)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def held_call(stack: ExitStack, address: tuple[str, int]) -> socket.socket:
    """A call that sends its environment, then never answers the IVR's first command."""
    sock = stack.enter_context(socket.create_connection(address, timeout=WAIT))
    sock.sendall(ENV)
    return sock


def test_beyond_max_connections_calls_are_closed_at_once_without_a_thread(
    ivr_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ivr_settings.agi.max_connections = 3
    before = threading.active_count()
    with AgiServer(ivr_settings, MemoryBackend(), port=0) as server, ExitStack() as stack:
        served = [held_call(stack, server.address) for _ in range(3)]
        for sock in served:
            assert sock.recv(11) == b"STREAM FILE"  # the IVR is running for these
        with caplog.at_level(logging.WARNING, logger="ivr_flows"):
            extra = [held_call(stack, server.address) for _ in range(5)]
            assert all(closed_by_server(sock) for sock in extra)
        # The accept thread and one thread per call served; none for the refused ones.
        assert threading.active_count() <= before + 1 + 3
        refusals = [r.getMessage() for r in caplog.records if "max_connections" in r.getMessage()]
        assert len(refusals) == 1
        for sock in served:
            sock.close()
        assert wait_for(lambda: threading.active_count() <= before + 1)
        # Room again: a whole call is served.
        log = place_call(server.address, Caller(keys=["1", "1"]))
        assert len(log.said_digits()) == 2
    assert wait_for(lambda: threading.active_count() <= before)


def test_a_session_trickling_bytes_is_cut_after_session_seconds(
    ivr_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ivr_settings.agi.session_seconds = 0.5  # the per-command timeout (10 s) never fires here
    with AgiServer(ivr_settings, MemoryBackend(), port=0) as server:
        with socket.create_connection(server.address, timeout=WAIT) as sock:
            sock.sendall(b"agi_network: yes\n")  # the environment, one byte at a time
            cut = False
            for _ in range(100):  # 10 s of trickling, far beyond session_seconds
                try:
                    sock.sendall(b"x")
                    time.sleep(0.1)
                    sock.setblocking(False)
                    cut = sock.recv(1) == b""
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    cut = True
                finally:
                    sock.setblocking(True)
                if cut:
                    break
        assert cut
    assert any("agi.session_seconds" in r.getMessage() for r in caplog.records)


def test_a_peer_outside_allowed_peers_is_closed_at_once(
    ivr_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ivr_settings.agi.allowed_peers = ["192.0.2.0/24"]
    with (
        AgiServer(ivr_settings, MemoryBackend(), port=0) as server,
        socket.create_connection(server.address, timeout=WAIT) as sock,
    ):
        sock.sendall(ENV)
        assert closed_by_server(sock)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "FastAGI: connection from 127.0.0.1 refused: not in agi.allowed_peers"
    ]


def test_loopback_is_allowed_by_default_and_a_listed_peer_is_served(
    ivr_settings: Settings,
) -> None:
    for peers in (None, ["127.0.0.1"], ["10.0.0.0/8", "127.0.0.0/8"]):
        ivr_settings.agi.allowed_peers = peers
        with AgiServer(ivr_settings, MemoryBackend(), port=0) as server:
            log = place_call(server.address, Caller(keys=["1", "1"]))
        assert len(log.said_digits()) == 2


def test_allowed_peers_must_be_addresses(ivr_settings: Settings) -> None:
    with pytest.raises(ValueError, match="not an IP address or network"):
        ivr_settings.agi.allowed_peers = ["asterisk.example"]
