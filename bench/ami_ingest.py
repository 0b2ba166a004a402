"""AMI ingest speed: bare asterisk-ami vs. the hotline listener, on the same bytes, same run.

The byte stream is the PBX simulator's traffic for 200 concurrent calls, recorded once. A
server in a process of its own (as Asterisk is) then plays it to each contender over loopback
TCP, as Asterisk would send it:

  (a) asterisk-ami 0.1.7's AMIClient with a no-op event callback (parsing only);
  (b) hotline's AmiSession + CallTracker + a sink that counts (parsing and tracking);
  (c) the whole listener: session, tracker and CallStore, until every call is committed to a
      fresh SQLite file with its recording ingested, its callback asked for and its audit
      entry written. The listener has stored 5 other calls first (untimed), as a listener
      that has been running has its statements prepared.

Prints events/s for each and the ratios b/a and c/a (target: c/a >= 0.5), best of ROUNDS,
the contenders alternating so that each sees the same machine load. The heap is settled
first, as every long-running hotline process settles it once started
(``hotline.app.lifecycle.settle_heap``); all three contenders run with it.
Run: .venv/bin/python bench/ami_ingest.py
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# The bare package is what (a) measures; product code reaches it only through hotline.ami.
from asterisk.ami import AMIClient, Event

from casebook.db import Database
from hotline.ami import AmiSession
from hotline.ami_protocol import AmiFramer, AmiMessage
from hotline.app.config import Settings
from hotline.app.lifecycle import settle_heap
from hotline.app.persist import CallStore
from hotline.simulator import PbxSimulator, SimulatedCall
from hotline.tracker import CallSink, CallTracker, FinishedCallsOnly, TrackedCall

CALLS = 200
# Calls a listener stored before the timed ones (see measure_listener).
WARM_UP_CALLS = 5
# Usernames that ask the stream server for each traffic.
MAIN, WARM_UP = "hotline", "warm-up"
ROUNDS = 10
# The target for c/a.
TARGET = 0.5
PATIENCE = 60.0
LOGIN = (
    b"Action: Login\r\nActionID: login-1\r\nUsername: hotline\r\n"
    b"Secret: hotline-secret\r\nEvents: on\r\n\r\n"
)
LOGOFF = b"Action: Logoff\r\nActionID: logoff-1\r\n\r\n"


class CountingSink(FinishedCallsOnly):
    """The default sink: counts finished calls and does nothing else."""

    def __init__(self) -> None:
        self.calls = 0

    def call_finished(self, call: TrackedCall) -> None:  # noqa: ARG002  (counting only)
        self.calls += 1


def record_simulator_traffic(calls: int, recordings: Path, *, epoch: int = 1795370000) -> bytes:
    """Every byte the simulator sends one listener for ``calls`` concurrent calls (the WAVs
    they name are written to ``recordings``, so the listener ingests real files). ``epoch``
    starts the Uniqueids: streams of different epochs are different calls."""
    simulator = PbxSimulator(seed=42, recordings_dir=recordings, epoch=epoch)
    with simulator as sim, socket.create_connection(("127.0.0.1", sim.port)) as sock:
        sock.sendall(LOGIN)
        chunks: list[bytes] = []
        reader = threading.Thread(target=_read_to_end, args=(sock, chunks))
        reader.start()
        sim.place_calls(SimulatedCall(f"0910{n:06d}") for n in range(calls))
        sim.wait_until_idle(PATIENCE)
        sock.sendall(LOGOFF)  # the Goodbye answer ends the stream
        reader.join(PATIENCE)
    return b"".join(chunks)


def _read_to_end(sock: socket.socket, chunks: list[bytes]) -> None:
    while data := sock.recv(1 << 16):
        chunks.append(data)


def count_events(stream: bytes) -> int:
    framer = AmiFramer(expect_banner=True)
    return sum(1 for m in framer.feed(stream) if m.kind == "Event")


class StreamServer:
    """Plays recorded streams from a child process, one connection at a time: the banner,
    then, once the client's Login block arrived, the rest of the stream its Username names.
    Forked before the contenders start threads, so that it shares no lock and no GIL with
    them."""

    def __init__(self, streams: dict[str, bytes]) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        context = multiprocessing.get_context("fork")
        self._process = context.Process(target=_serve, args=(self._socket, streams), daemon=True)
        self._process.start()

    def close(self) -> None:
        self._process.terminate()
        self._process.join(PATIENCE)
        self._socket.close()


def _serve(server: socket.socket, streams: dict[str, bytes]) -> None:
    while True:
        client, _ = server.accept()
        with client:
            stream = next(iter(streams.values()))
            banner_end = stream.index(b"\r\n") + 2
            client.sendall(stream[:banner_end])
            received = b""
            while b"\r\n\r\n" not in received:
                received += client.recv(4096)
            username = re.search(rb"Username: (\S+)", received)
            stream = streams[username[1].decode() if username else ""]
            client.sendall(stream[stream.index(b"\r\n") + 2 :])
            with contextlib.suppress(OSError):
                while client.recv(4096):
                    pass


def ignore_event(event: Event, source: AMIClient) -> None:  # noqa: ARG001  (a no-op callback)
    return None


def measure_bare(server: StreamServer) -> float:
    """Seconds for asterisk-ami to read and dispatch the stream to a no-op callback."""
    client = AMIClient(address="127.0.0.1", port=server.port, timeout=PATIENCE)
    client.add_event_listener(ignore_event)
    client.connect()
    started = time.perf_counter()
    client.login(MAIN, "hotline-secret")
    client._thread.join(PATIENCE)  # the Goodbye at the end stops its listener thread
    elapsed = time.perf_counter() - started
    client.disconnect()
    return elapsed


def measure_hotline(server: StreamServer, traffic: Traffic, sink: CallSink) -> float:
    """Seconds for hotline's session + tracker (+ ``sink``) to take in every event."""
    tracker = CallTracker(sink)
    done = threading.Event()
    seen = 0

    def on_event(message: AmiMessage, received_at: datetime) -> None:
        nonlocal seen
        tracker.on_event(message, received_at)
        if message.kind == "Event":
            seen += 1
            if seen == traffic.events:
                done.set()

    session = AmiSession("127.0.0.1", server.port, on_event)
    session.open()
    started = time.perf_counter()
    session.send_action("Login", {"Username": traffic.name, "Secret": "hotline-secret"})
    done.wait(PATIENCE)
    elapsed = time.perf_counter() - started
    session.close()
    session.join(PATIENCE)
    return elapsed


def measure_listener(
    server: StreamServer, traffic: Traffic, warm_up: Traffic, recordings: Path
) -> float:
    """Seconds for the whole listener (session, tracker, CallStore writing to a fresh SQLite
    file) until every event was read AND every call is stored in the database. The listener
    has been running: it stored the ``warm_up`` calls before (untimed), so its statements are
    prepared, as they are in a listener that runs for months."""
    folder = Path(tempfile.mkdtemp())
    settings = Settings()
    settings.database.url = f"sqlite:///{folder / 'bench.db'}"
    # The simulator's recordings: outside recordings.root they would be refused, not ingested.
    settings.recordings.root = recordings
    db = Database(settings.database, create=True)
    store = CallStore(db, settings)
    store.start()
    measure_hotline(server, warm_up, store)
    stored = store.wait_until_stored(warm_up.calls, PATIENCE)
    elapsed = measure_hotline(server, traffic, store)
    started = time.perf_counter()
    stored = stored and store.wait_until_stored(warm_up.calls + traffic.calls, PATIENCE * 10)
    elapsed += time.perf_counter() - started
    if not stored:
        raise SystemExit(f"the listener stored {store.stats.stored} calls of {CALLS}: no figure")
    store.stop()
    db.dispose()
    shutil.rmtree(folder)
    return elapsed


@dataclass(frozen=True)
class Traffic:
    name: str  # the Username that asks the server for it
    stream: bytes
    events: int
    calls: int

    @classmethod
    def record(cls, name: str, calls: int, recordings: Path, *, epoch: int) -> Traffic:
        stream = record_simulator_traffic(calls, recordings, epoch=epoch)
        return cls(name, stream, count_events(stream), calls)


@dataclass(frozen=True)
class BenchResult:
    events: int
    bare_seconds: float
    hotline_seconds: float
    listener_seconds: float

    @property
    def listener_rate(self) -> float:
        return self.events / self.listener_seconds

    @property
    def listener_ratio(self) -> float:
        return self.listener_rate / self.bare_rate

    @property
    def bare_rate(self) -> float:
        return self.events / self.bare_seconds

    @property
    def hotline_rate(self) -> float:
        return self.events / self.hotline_seconds

    @property
    def ratio(self) -> float:
        return self.hotline_rate / self.bare_rate


def run(sink_factory: Callable[[], CallSink] = CountingSink) -> BenchResult:
    """Best of ``ROUNDS`` for each contender, alternating so both see the same machine load."""
    recordings = Path(tempfile.mkdtemp())
    traffic = Traffic.record(MAIN, CALLS, recordings, epoch=1795370000)
    warm_up = Traffic.record(WARM_UP, WARM_UP_CALLS, recordings, epoch=1795360000)
    server = StreamServer({MAIN: traffic.stream, WARM_UP: warm_up.stream})
    settle_heap()

    bare, ours, full = [], [], []
    try:
        for _ in range(ROUNDS):
            bare.append(measure_bare(server))
            ours.append(measure_hotline(server, traffic, sink_factory()))
            full.append(measure_listener(server, traffic, warm_up, recordings))
    finally:
        server.close()
        shutil.rmtree(recordings)
    return BenchResult(traffic.events, min(bare), min(ours), min(full))


def main() -> None:
    result = run()
    print(
        f"AMI ingest: {CALLS} concurrent simulated calls, {result.events} events, best of {ROUNDS}"
    )
    print(f"{'contender':<40} {'seconds':>8} {'events/s':>10}")
    print(
        f"{'(a) asterisk-ami, no-op callback':<40} {result.bare_seconds:>8.3f}"
        f" {result.bare_rate:>10,.0f}"
    )
    print(
        f"{'(b) hotline session + tracker + sink':<40} {result.hotline_seconds:>8.3f}"
        f" {result.hotline_rate:>10,.0f}"
    )
    print(
        f"{'(c) listener + DB writes (all stored)':<40} {result.listener_seconds:>8.3f}"
        f" {result.listener_rate:>10,.0f}"
    )
    print(f"ratio b/a = {result.ratio:.2f} (parsing and tracking)")
    met = result.listener_ratio >= TARGET
    verdict = "meets" if met else "MISSES"
    print(
        f"ratio c/a = {result.listener_ratio:.2f} ({verdict} the {TARGET} target,"
        " DB writes included)"
    )
    if not met:
        sys.exit(1)  # bench/run_all.py lists it as missed


if __name__ == "__main__":
    main()
