"""A PBX simulator speaking Asterisk 22's AMI over TCP, for ``hotline demo`` and the tests.

It answers what the listener and the agents' tools send (Login, Ping, Filter, Events,
CoreShowChannels, Originate, Command, Logoff), runs many calls at once with the events of
different calls interleaved in a seeded random order, writes the WAV recordings those calls
name, and on request misbehaves: drops connections (with events lost in the gap), restarts,
stalls, and mixes malformed blocks into the stream.

Given a FastAGI address, each hotline call runs the dialplan's ``AGI(agi://…/hotline)`` for
real: the IVR's commands are answered as Asterisk answers them, by a simulated caller who keys
a complaint and speaks it, and what the IVR sets and announces appears on AMI.

A list answer (CoreShowChannels) is never split by events, as in Asterisk. Calls only advance
while a client is logged in, except for the scripted gaps after a drop: that keeps tests
deterministic without hiding the gaps.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import queue
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from hotline.ami_protocol import AmiFramer, AmiMessage, render
from hotline.simulator.agi_peer import Caller
from hotline.simulator.agi_session import AgiSession
from hotline.simulator.audio import caller_voice, tone, write_open_wav, write_wav
from hotline.simulator.script import (
    CallIds,
    ChannelRegistry,
    Headers,
    SimulatedCall,
    Step,
    Wait,
    agi_call,
    callback_call,
    core_show_channel,
    hotline_call,
)

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
DEFAULT_RECORDINGS = Path("/var/spool/asterisk/monitor")
LOCAL_CHANNEL = re.compile(r"Local/(?P<number>[^@]+)@(?P<context>[^/]+)")
# What the simulator puts on the wire when asked for malformed traffic, in rotation.
MALFORMED_BLOCKS = (
    b"!!garbage line from a confused peer!!\r\n\r\n",
    b"Event: SimNoise\r\nPrivilege: system,all\r\nthis line has no colon\r\n\r\n",
    b"Event: Newexten\r\nChannel: Local/15654@hotline-\xff\xfe;1\r\nUniqueid: \xc3\x28\r\n\r\n",
    b"Event: Hangup\r\nPrivilege: call,all\r\nChann\r\n\r\n",
)
RECV_BYTES = 1 << 16
# A client that stops reading for this long is dropped, so one stuck reader cannot block all.
SEND_TIMEOUT = 2.0
# How long a control call waits for the engine thread (a safety net, never reached normally).
COMMAND_TIMEOUT = 10.0
T = TypeVar("T")


@dataclass
class SimulatorStats:
    connections: int = 0
    logins: int = 0
    failed_logins: int = 0
    events_sent: int = 0
    events_lost: int = 0  # emitted while nobody was connected
    malformed_sent: int = 0


@dataclass
class _Session:
    sock: socket.socket
    logged_in: bool = False
    events: bool = False
    stalled: bool = False
    filters: list[re.Pattern[str]] = field(default_factory=list)

    def wants(self, text: str) -> bool:
        return not self.filters or any(f.search(text) for f in self.filters)


class PbxSimulator:
    """Start it (or use it as a context manager), point an AMI client at ``port``, place calls.

    One engine thread owns every call, channel and client connection: actions from clients
    and calls of the control methods below queue up for it. So nothing needs a lock, a list
    answer is never split by events, and a busy stream cannot starve action answers.
    """

    def __init__(
        self,
        *,
        username: str = "hotline",
        secret: str = "hotline-secret",
        recordings_dir: Path | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        exten: str = "15654",
        event_interval: float = 0.0,
        dial_outcomes: dict[str, str] | None = None,
        agi: tuple[str, int] | None = None,
        epoch: int = 1795370000,
        callback_talk_seconds: float = 0.5,
    ) -> None:
        """``agi``: the FastAGI server (host, port) hotline calls are handed to (loopback only);
        without it a scripted IVR stands in. ``epoch`` starts the Uniqueids (``epoch.seq``, as
        Asterisk makes them): fixed for repeatable tests, the time for a site that persists."""
        for address in [host] if agi is None else [host, agi[0]]:
            if not ipaddress.ip_address(address).is_loopback:
                raise ValueError(f"the simulator stays on loopback, not {address}")
        self.stats = SimulatorStats()
        self.username, self.secret, self.exten = username, secret, exten
        self.recordings_dir = recordings_dir
        self.event_interval = event_interval
        self.agi = agi
        # What a callback's Dial() ends with, per customer number (ANSWER when not listed).
        self.dial_outcomes = dial_outcomes or {}
        # How long an answered callback's agent and customer talk before hanging up.
        self.callback_talk_seconds = callback_talk_seconds
        self.originated: list[AmiMessage] = []  # every Originate action received, for tests
        self._rng = random.Random(seed)
        self._inbox: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wakeup = threading.Event()
        self._idle = threading.Event()
        self._sessions: list[_Session] = []
        self._calls: list[Iterator[Step]] = []
        # Calls waiting for their FastAGI dialogue, taken up again once it has news.
        self._waiting: list[tuple[Iterator[Step], Wait]] = []
        self._agi_sessions: list[AgiSession] = []
        self._registry = ChannelRegistry()
        self._drop_points: set[int] = set()
        self._gap_events = 0
        self._malformed_due = 0
        self._emitted = 0
        self._pause_at: int | None = None
        self._epoch = epoch
        self._sequence = 0
        self._boot = time.monotonic()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._server = socket.create_server((host, port))
        self.host, self.port = self._server.getsockname()[:2]

    # Control (any thread) ---------------------------------------------------------------------

    def start(self) -> PbxSimulator:
        for target, name in ((self._accept_loop, "sim-accept"), (self._engine, "sim-engine")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        # shutdown() wakes the thread blocked in accept(); close() alone does not on Linux.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for thread in self._threads:
            thread.join(timeout=COMMAND_TIMEOUT)
        for agi_session in self._agi_sessions:
            agi_session.stop()
        for session in self._sessions:
            with contextlib.suppress(OSError):
                session.sock.shutdown(socket.SHUT_RDWR)  # wakes its reader thread

    def __enter__(self) -> PbxSimulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def place_calls(self, calls: Iterable[SimulatedCall]) -> list[str]:
        """Start these calls now; returns their Linkedids."""
        wanted = list(calls)

        def place() -> list[str]:
            directory = self.recordings_dir or DEFAULT_RECORDINGS
            linkedids = []
            for call in wanted:
                ids = self._next_ids()
                args = (call, ids, self._registry, directory, self._save_audio, self._rng)
                script: Iterator[Step] = (
                    hotline_call(*args, self.exten)
                    if self.agi is None
                    else agi_call(*args, self._start_agi, self.exten, self._next_ids)
                )
                self._calls.append(script)
                linkedids.append(ids.first)
            self._idle.clear()  # before the caller can ask wait_until_idle
            return linkedids

        return self._run(place)

    def schedule_drops(self, after_events: Iterable[int], *, gap_events: int) -> None:
        """Drop every connection after these many events; ``gap_events`` more are then lost."""
        points = set(after_events)

        def schedule() -> None:
            self._drop_points.update(points)
            self._gap_events = gap_events

        self._run(schedule)

    def inject_malformed(self, count: int) -> None:
        """Mix ``count`` malformed blocks into the event stream over the coming events."""

        def inject() -> None:
            self._malformed_due += count
            self._idle.clear()

        self._run(inject)

    def drop_connections(self) -> None:
        self._run(self._drop_all)

    def restart(self, *, keep_calls: bool = True) -> None:
        """Asterisk restarts: connections drop; new logins see FullyBooted with a fresh uptime.

        Without ``keep_calls`` the calls in progress vanish silently, as on a crash.
        """

        def restart() -> None:
            self._drop_all()
            if not keep_calls:
                self._calls.clear()
                self._waiting.clear()
                self._registry.channels.clear()
            self._epoch += 1000
            self._boot = time.monotonic()

        self._run(restart)

    def stall(self) -> None:
        """Current connections stay open but get no answers and no events (a hung Asterisk)."""

        def stall() -> None:
            for session in self._sessions:
                session.stalled = True

        self._run(stall)

    def pause_after(self, events: int) -> None:
        """Freeze every call once this many call events have been sent (until ``resume``)."""

        def pause() -> None:
            self._pause_at = events

        self._run(pause)

    def resume(self) -> None:
        def resume() -> None:
            self._pause_at = None
            if self._calls:
                self._idle.clear()

        self._run(resume)

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until every placed call has said all it had to say (or the pause point)."""
        return self._idle.wait(timeout)

    def agi_sessions(self) -> Counter[str]:
        """How many of the calls' FastAGI sessions stand where: ``connecting``, ``talking`` (the
        server has accepted the session and sent a command), or the AGISTATUS each ended with
        (SUCCESS; HANGUP, the caller hung up; FAILURE, the server was unreachable)."""
        return self._run(lambda: Counter(s.state for s in self._agi_sessions))

    def live_linkedids(self) -> set[str]:
        """The calls with a channel up now, as CoreShowChannels would list them."""
        return self._run(lambda: {c.linkedid for c in self._registry.channels.values()})

    def _run(self, command: Callable[[], T]) -> T:
        """Run ``command`` on the engine thread and return its result."""
        done: Future[T] = Future()

        def wrapped() -> None:
            try:
                done.set_result(command())
            except Exception as exc:
                done.set_exception(exc)

        self._submit(wrapped)
        return done.result(COMMAND_TIMEOUT)

    def _submit(self, command: Callable[[], None]) -> None:
        self._inbox.put(command)
        self._wakeup.set()

    # The engine thread ------------------------------------------------------------------------

    def _engine(self) -> None:
        while not self._stopping:
            self._wakeup.wait()
            self._wakeup.clear()
            while not self._inbox.empty():
                self._guarded(self._inbox.get())
            self._take_up_ready()
            paused = self._pause_at is not None and self._emitted >= self._pause_at
            busy = bool(self._calls or self._malformed_due) and not paused
            if busy or (self._waiting and not paused):
                self._idle.clear()
            else:
                self._idle.set()
            if busy and self._listening():
                self._guarded(self._step)
                if self._emitted in self._drop_points:
                    self._drop_points.discard(self._emitted)
                    self._drop_all()
                    for _ in range(self._gap_events):
                        self._guarded(self._step)
                self._wakeup.set()
                if self.event_interval:
                    time.sleep(self.event_interval)

    def _guarded(self, work: Callable[[], None]) -> None:
        # A bad action or a failing disk costs one step; a dead engine would hang every client.
        try:
            work()
        except Exception:
            log.exception("PBX simulator: step failed")

    def _drop_all(self) -> None:
        for session in list(self._sessions):
            self._close(session)

    def _next_ids(self) -> CallIds:
        first = self._sequence
        self._sequence += 2
        return CallIds(first // 2, f"{self._epoch}.{first}", f"{self._epoch}.{first + 1}")

    def _save_audio(self, path: Path, call: SimulatedCall) -> None:
        if self.recordings_dir is not None:
            write_wav(path, caller_voice(call.audio))

    def _start_agi(self, caller: Caller) -> AgiSession:
        assert self.agi is not None  # only handed to calls when set
        # The session's thread wakes the engine whenever the dialogue has news.
        session = AgiSession(self.agi, caller, wake=self._wakeup.set)
        self._agi_sessions.append(session)
        return session

    def _take_up_ready(self) -> None:
        """Waiting calls whose dialogue has news may advance again."""
        still = []
        for script, wait in self._waiting:
            if wait.ready():
                self._calls.append(script)
            else:
                still.append((script, wait))
        self._waiting = still

    def _listening(self) -> bool:
        return any(s.events and not s.stalled for s in self._sessions)

    def _step(self) -> None:
        """Advance one random call by one event and send it to whoever listens."""
        if self._malformed_due and (not self._calls or self._rng.random() < 0.2):
            block = MALFORMED_BLOCKS[self.stats.malformed_sent % len(MALFORMED_BLOCKS)]
            self._malformed_due -= 1
            self.stats.malformed_sent += 1
            for session in list(self._sessions):
                if session.events and not session.stalled:
                    self._send_raw(session, block)
            return
        if not self._calls:
            return
        index = self._rng.randrange(len(self._calls))
        step = next(self._calls[index], None)
        if step is None:
            self._calls.pop(index)
            return
        if isinstance(step, Wait):
            self._waiting.append((self._calls.pop(index), step))
            return
        self._emitted += 1
        self._broadcast(step)

    def _broadcast(self, headers: Headers) -> None:
        listeners = [s for s in self._sessions if s.events and not s.stalled]
        if not listeners:
            self.stats.events_lost += 1
            return
        wire = render(headers)
        text = wire.decode("utf-8", errors="replace")
        for session in listeners:
            if session.wants(text):
                self._send_raw(session, wire)
        self.stats.events_sent += 1

    # Connections ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            sock.settimeout(SEND_TIMEOUT)
            session = _Session(sock)
            self._submit(partial(self._greet, session))
            thread = threading.Thread(target=self._serve, args=(session,), daemon=True)
            thread.start()

    def _greet(self, session: _Session) -> None:
        self._sessions.append(session)
        self.stats.connections += 1
        self._send_raw(session, BANNER)

    def _serve(self, session: _Session) -> None:
        """Reads one client's actions (its own thread) and queues them for the engine."""
        framer = AmiFramer(expect_banner=False)
        try:
            while not self._stopping:
                try:
                    data = session.sock.recv(RECV_BYTES)
                except TimeoutError:
                    continue  # the timeout is for sends; a quiet client is fine
                if not data:
                    break
                for message in framer.feed(data):
                    if message.kind == "Action":
                        self._submit(partial(self._answer, session, message))
        except OSError:
            pass
        finally:
            self._submit(partial(self._close, session))
            session.sock.close()

    def _answer(self, session: _Session, action: AmiMessage) -> None:
        if session.stalled or session not in self._sessions:
            return
        name = action.name.lower()
        action_id = [("ActionID", action.action_id)] if action.action_id is not None else []
        if name == "login":
            self._login(session, action, action_id)
        elif name == "logoff":
            self._respond(session, "Goodbye", action_id, ("Message", "Thanks for all the fish."))
            self._close(session)
        elif not session.logged_in:
            self._respond(session, "Error", action_id, ("Message", "Permission denied"))
        elif name == "ping":
            stamp = f"{time.time():.6f}"
            self._respond(session, "Success", action_id, ("Ping", "Pong"), ("Timestamp", stamp))
        elif name == "filter":
            self._filter(session, action, action_id)
        elif name == "events":
            session.events = (action.get("EventMask") or "off").lower() != "off"
            state = ("Events", "On" if session.events else "Off")
            self._respond(session, "Success", action_id, state)
        elif name == "coreshowchannels":
            self._show_channels(session, action.action_id or "")
        elif name == "originate":
            self._originate(session, action, action_id)
        elif name == "command":
            output = (
                "Asterisk 22.10.1 (hotline PBX simulator)"
                if (action.get("Command") or "").strip() == "core show version"
                else f"No such command '{action.get('Command')}'"
            )
            message = ("Message", "Command output follows")
            self._respond(session, "Success", action_id, message, ("Output", output))
        else:
            self._respond(session, "Error", action_id, ("Message", "Invalid/unknown command"))

    def _login(self, session: _Session, action: AmiMessage, action_id: Headers) -> None:
        if action.get("Username") != self.username or action.get("Secret") != self.secret:
            self.stats.failed_logins += 1
            self._respond(session, "Error", action_id, ("Message", "Authentication failed"))
            self._close(session)
            return
        self.stats.logins += 1
        self._respond(session, "Success", action_id, ("Message", "Authentication accepted"))
        uptime = str(int(time.monotonic() - self._boot))
        self._send(
            session,
            [
                ("Event", "FullyBooted"),
                ("Privilege", "system,all"),
                ("Uptime", uptime),
                ("LastReload", uptime),
                ("Status", "Fully Booted"),
            ],
        )
        self._send(
            session,
            [
                ("Event", "SuccessfulAuth"),
                ("Privilege", "security,all"),
                ("Severity", "Informational"),
                ("Service", "AMI"),
                ("EventVersion", "1"),
                ("AccountID", self.username),
                ("UsingPassword", "0"),
            ],
        )
        session.logged_in = True
        session.events = (action.get("Events") or "on").lower() != "off"

    def _filter(self, session: _Session, action: AmiMessage, action_id: Headers) -> None:
        try:
            session.filters.append(re.compile(action.get("Filter") or ""))
        except re.error:
            self._respond(session, "Error", action_id, ("Message", "Filter Not Added"))
            return
        self._respond(session, "Success", action_id, ("Message", "Filter Added Successfully"))

    def _show_channels(self, session: _Session, action_id: str) -> None:
        channels = list(self._registry.channels.values())
        self._respond(
            session,
            "Success",
            [("ActionID", action_id)],
            ("EventList", "start"),
            ("Message", "Channels will follow"),
        )
        for channel in channels:
            self._send(session, core_show_channel(channel, action_id))
        self._send(
            session,
            [
                ("Event", "CoreShowChannelsComplete"),
                ("ActionID", action_id),
                ("EventList", "Complete"),
                ("ListItems", str(len(channels))),
            ],
        )

    def _originate(self, session: _Session, action: AmiMessage, action_id: Headers) -> None:
        self.originated.append(action)
        match = LOCAL_CHANNEL.fullmatch(action.get("Channel") or "")
        if match is None:
            self._respond(session, "Error", action_id, ("Message", "Originate failed"))
            return
        self._respond(session, "Success", action_id, ("Message", "Originate successfully queued"))
        ids = self._next_ids()
        customer = action.get("Exten") or "s"
        variables = dict(v.partition("=")[::2] for v in action.get_all("Variable"))

        def record(uniqueid: str) -> Callable[[], None]:
            # The callback dialplan's MixMonitor: callback-<HOTLINE_CALLBACK>-<UNIQUEID>.wav,
            # whose header says 0 bytes of data until the recording channel hangs up.
            if self.recordings_dir is None or "HOTLINE_CALLBACK" not in variables:
                return lambda: None
            path = self.recordings_dir / f"callback-{variables['HOTLINE_CALLBACK']}-{uniqueid}.wav"
            write_open_wav(path, tone())
            return lambda: write_wav(path, tone())

        talk_until = time.monotonic() + self.callback_talk_seconds
        # Nothing else may wake the engine when the talk is over.
        timer = threading.Timer(self.callback_talk_seconds, self._wakeup.set)
        timer.daemon = True
        timer.start()

        self._calls.append(
            callback_call(
                match["number"],
                ids,
                self._registry,
                action.action_id or "",
                context=action.get("Context") or match["context"],
                customer=customer,
                dial_status=self.dial_outcomes.get(customer, "ANSWER"),
                record=record,
                talk=Wait(lambda: time.monotonic() >= talk_until),
            )
        )

    def _respond(
        self, session: _Session, status: str, action_id: Headers, *extra: tuple[str, str]
    ) -> None:
        self._send(session, [("Response", status), *action_id, *extra])

    def _send(self, session: _Session, headers: Sequence[tuple[str, str]]) -> None:
        self._send_raw(session, render(headers))

    def _send_raw(self, session: _Session, wire: bytes) -> None:
        try:
            session.sock.sendall(wire)
        except OSError:
            self._close(session)

    def _close(self, session: _Session) -> None:
        """Hang up the way a server does: what was sent still arrives, then the client sees EOF.

        (Closing with unread input would send a reset and destroy data in flight, which would
        make a drop lose an unpredictable number of events.) The reader thread closes the socket.
        """
        if session in self._sessions:
            self._sessions.remove(session)
        with contextlib.suppress(OSError):
            session.sock.shutdown(socket.SHUT_WR)
