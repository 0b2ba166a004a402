"""The one door to the asterisk-ami package: an AMI client that survives what Asterisk does.

Nothing else in the project imports ``asterisk.ami``. From asterisk-ami 0.1.7 this module uses
``Action`` to render outgoing actions (``Action:``, its keys, ``Variable: NAME=value`` lines) and
``AMIClient.asterisk_start_regex`` to recognise the banner. Its client loop, parser and futures
are replaced, because of defects measured against Asterisk 22 (each one has a test in
``tests/hotline/test_asterisk_ami_defects.py`` showing the defect and that this client is immune):

1. ``AMIClient`` hands its 3 s action timeout to ``socket.settimeout``, so 3 s without traffic
   raises in ``recv`` and silently ends the listener thread. Here the socket blocks once the
   banner is read; a dead or stalled peer is found by the keep-alive ``Ping``, and an action
   timeout is a deadline on that action's future only.
2. ``AutoReconnect`` after a server stall: the listener died on the read timeout without setting
   ``finished``, so its re-login writes to the old socket that nobody reads and never recovers.
   Here a missed ``Ping`` closes the session, joins its reader thread and opens a new TCP
   connection, with capped exponential backoff and jitter.
3. An exception in a user callback propagates into ``AMIClient.listen`` and ends the thread. Here
   every handler call is guarded: the error is logged and counted (``handler_errors``).
4. List actions: the future resolves with the first ``EventList: start`` response; the items go
   to the event listeners and ``…Complete`` is never matched. Here events carrying a pending list
   action's ActionID are collected until ``EventList: Complete`` and checked against ``ListItems``.
5. ``FutureResponse.set_response`` calls ``traceback.print_exc()`` without importing
   ``traceback``: a raising callback becomes a NameError in the listener thread. Here futures are
   ``concurrent.futures.Future`` and callbacks are guarded.

Also replaced: ``Event.read`` keeps one value per key (repeated ``ChanVariable`` folded into a
dict, ``ChanVariable(Local/…;1)`` and ``LocalOneChanVariable`` keep only the last), so parsing is
``hotline.ami_protocol``'s; ``send`` used ``socket.send`` (partial writes), here ``sendall`` under
a lock. And where asterisk-ami logs in with ``Events: on``, ``AmiClient`` logs in with events off,
adds its filters, then turns events on, so a half-built filter list never drops events.

AMI over TLS (``ami.tls``; asterisk-ami has plain sockets only): the connection is wrapped with
``ssl`` here, the server's certificate checked against ``ami.tls_ca_file`` and the name
``ami.tls_server_name`` (else ``ami.host``). Not with ``ssl.SSLSocket``: its reader thread and
another thread's action would use one OpenSSL object at once, which OpenSSL does not allow.
``_TlsWire`` runs TLS in memory (``ssl.MemoryBIO``) under a lock held only while no socket call
blocks, and only writers send, so the reader never waits on the network to write.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, Self

from asterisk.ami import Action, AMIClient

from casebook.retry import Backoff
from hotline.ami_protocol import AmiFramer, AmiMessage, ParseStats
from hotline.ami_settings import AmiSettings

log = logging.getLogger(__name__)

RECV_BYTES = 1 << 16
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class AmiError(Exception):
    """Something went wrong talking to Asterisk; the message is phrased for an operator."""


class AmiLoginError(AmiError):
    """Asterisk refused the username or secret. Retrying would only fill its security log."""


class AmiConnectionError(AmiError):
    """No connection, or the connection ended while an action waited for its answer."""


class AmiActionTimeout(AmiError):
    """An action got no answer within its timeout."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``."""


class AmiListError(AmiError):
    """A list action's items do not match the ``ListItems`` count Asterisk announced."""


class _Wire(Protocol):
    """What a session needs of its connection (a plain socket, or ``_TlsWire``)."""

    def recv(self, size: int, /) -> bytes: ...

    def sendall(self, data: bytes, /) -> None: ...

    def settimeout(self, value: float | None, /) -> None: ...

    def shutdown(self, how: int, /) -> None: ...

    def close(self) -> None: ...


class _TlsWire:
    """TLS over a connected socket, safe for one reading thread and any number of writers."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_name: str) -> None:
        self._sock = sock
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_name)
        self._lock = threading.Lock()  # the TLS object and its buffers
        self._sending = threading.Lock()  # keeps records in order on the wire

    @classmethod
    def handshake(cls, sock: socket.socket, context: ssl.SSLContext, server_name: str) -> Self:
        """Shake hands (within the socket's timeout); raises ``ssl.SSLError`` or ``OSError``."""
        wire = cls(sock, context, server_name)
        while True:
            try:
                with wire._lock:
                    wire._tls.do_handshake()
            except ssl.SSLWantReadError:
                wire.sendall(b"")
                if not wire._fill():
                    raise ConnectionError("closed during the TLS handshake") from None
                continue
            wire.sendall(b"")
            return wire

    def recv(self, size: int, /) -> bytes:
        while True:
            with self._lock:
                try:
                    return self._tls.read(size)
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:
                    return b""  # the peer closed TLS
            if not self._fill():
                return b""

    def sendall(self, data: bytes, /) -> None:
        # Whatever TLS wants to say (handshake, or records left by the reader) goes out too.
        with self._sending:
            with self._lock:
                if data:
                    self._tls.write(data)
                pending = self._outgoing.read()
            if pending:
                self._sock.sendall(pending)

    def _fill(self) -> bool:
        """Read from the socket into TLS; False at end of stream."""
        data = self._sock.recv(RECV_BYTES)
        with self._lock:
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()
        return bool(data)

    def settimeout(self, value: float | None, /) -> None:
        self._sock.settimeout(value)

    def shutdown(self, how: int, /) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()


def client_tls(settings: AmiSettings) -> ssl.SSLContext | None:
    """The TLS context ``ami.tls`` asks for: the server verified against ``ami.tls_ca_file``
    (else the system's CAs), its certificate naming the host we dial (or tls_server_name)."""
    if not settings.tls:
        return None
    cafile = settings.tls_ca_file
    try:
        return ssl.create_default_context(cafile=str(cafile) if cafile is not None else None)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise AmiError(f"ami.tls_ca_file {cafile}: cannot load the CA certificates: {exc}") from exc


@dataclass(frozen=True)
class ActionResult:
    response: AmiMessage
    # For list actions (CoreShowChannels…): the item events, in arrival order.
    items: tuple[AmiMessage, ...] = ()


@dataclass
class ConnectionStats(ParseStats):
    connections: int = 0
    stalls: int = 0
    handler_errors: int = 0
    list_mismatches: int = 0


class AmiHandler(Protocol):
    """Where a client delivers what it receives, in stream order, from its reader thread."""

    def on_event(self, message: AmiMessage, received_at: datetime) -> None: ...

    def on_channels(self, channels: Sequence[AmiMessage], received_at: datetime) -> None:
        """A complete ``CoreShowChannels`` snapshot, taken after each (re)connect."""


@dataclass
class _Pending:
    name: str
    future: Future[ActionResult]
    sent_at: float
    list_response: AmiMessage | None = None
    items: list[AmiMessage] = field(default_factory=list)


class AmiSession:
    """One TCP connection: banner, actions correlated by ActionID, a reader thread.

    ``on_event`` gets every message that answers no pending action (events, stray responses),
    in stream order, on the reader thread. The session never reconnects; ``AmiClient`` does.
    """

    def __init__(
        self,
        host: str,
        port: int,
        on_event: Callable[[AmiMessage, datetime], None],
        *,
        stats: ConnectionStats | None = None,
        connect_timeout: float = 5.0,
        clock: Clock = utc_now,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        """``tls``: speak TLS (``client_tls``), expecting a certificate for ``server_name``
        (default ``host``)."""
        self.host, self.port = host, port
        self.stats = stats if stats is not None else ConnectionStats()
        self.protocol_version: str | None = None
        self.closed = threading.Event()
        self._on_event = on_event
        self._connect_timeout = connect_timeout
        self._clock = clock
        self._framer = AmiFramer(expect_banner=True, stats=self.stats)
        self._tls = tls
        self._server_name = server_name or host
        self._socket: _Wire | None = None
        self._reader: threading.Thread | None = None
        self._early: list[AmiMessage] = []
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._action_numbers = itertools.count(1)
        # Asterisk sends an async Originate's OriginateResponse, ActionID and all, to every
        # session reading call events: numbers alone ("originate-7") made two diallers take
        # each other's results, so each session's ActionIDs carry a random tag of its own.
        self._action_tag = secrets.token_hex(4)

    @classmethod
    def from_settings(
        cls,
        settings: AmiSettings,
        on_event: Callable[[AmiMessage, datetime], None],
        *,
        tls: ssl.SSLContext | None,
        stats: ConnectionStats | None = None,
        clock: Clock = utc_now,
    ) -> Self:
        """A session to the Asterisk ``settings`` name (host, port, timeouts); ``tls`` is
        ``client_tls(settings)``, made once for every connection."""
        return cls(
            settings.host,
            settings.port,
            on_event,
            stats=stats,
            connect_timeout=settings.connect_timeout,
            clock=clock,
            tls=tls,
            server_name=settings.tls_server_name,
        )

    def open(self) -> str:
        """Connect and read the banner; returns the AMI protocol version (e.g. 11.0.0)."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self._connect_timeout)
        except OSError as exc:
            raise AmiConnectionError(
                f"cannot connect to AMI at {self.host}:{self.port}: {exc}"
            ) from exc
        wire: _Wire = sock
        self._socket = wire
        if self._tls is not None:
            try:
                wire = self._socket = _TlsWire.handshake(sock, self._tls, self._server_name)
            except OSError as exc:  # ssl.SSLError is one
                self.close()
                raise AmiConnectionError(
                    f"TLS with AMI at {self.host}:{self.port} failed: {exc}"
                    " (ami.tls_ca_file, ami.tls_server_name; manager.conf tlsenable)"
                ) from exc
        try:
            while self._framer.banner is None:
                data = wire.recv(RECV_BYTES)
                if not data:
                    raise AmiConnectionError(f"{self.host}:{self.port} closed before its banner")
                self._early.extend(self._framer.feed(data))
        except OSError as exc:
            self.close()
            raise AmiConnectionError(f"no AMI banner from {self.host}:{self.port}: {exc}") from exc
        match = AMIClient.asterisk_start_regex.match(self._framer.banner or "")
        if match is None:
            self.close()
            raise AmiConnectionError(f"{self.host}:{self.port} is not AMI: {self._framer.banner!r}")
        self.protocol_version = match.group("version")
        # Defect 1: from here on reads block; silence is not an error, the keep-alive judges it.
        wire.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name="ami-reader", daemon=True)
        self._reader.start()
        return self.protocol_version

    def login(self, username: str, secret: str, timeout: float, *, events: bool = True) -> None:
        """Log in; ``events=False`` asks for no events until an ``Events`` action turns them on."""
        headers = {"Username": username, "Secret": secret, "Events": "on" if events else "off"}
        try:
            self.request("Login", headers, timeout=timeout)
        except AmiActionError as exc:
            raise AmiLoginError(
                f"Asterisk refused AMI user {username!r} at {self.host}:{self.port}: {exc}"
            ) from exc

    def send_action(
        self,
        name: str,
        headers: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        *,
        on_done: Callable[[Future[ActionResult]], None] | None = None,
    ) -> Future[ActionResult]:
        """Send an action; the future resolves with its answer (and list items, if any).

        ``on_done`` runs on the reader thread, in stream order with the events: what it does
        with a list happens before any later event is handled.
        """
        keys = dict(headers or {})
        for value in itertools.chain(keys.values(), (variables or {}).values()):
            if "\r" in value or "\n" in value:
                raise AmiError(f"{name}: a header value must not contain a line break")
        future: Future[ActionResult] = Future()
        if on_done is not None:
            future.add_done_callback(self._guarded(on_done))
        with self._lock:
            action_id = f"{name.lower()}-{self._action_tag}-{next(self._action_numbers)}"
            keys["ActionID"] = action_id
            wire = (str(Action(name, keys=keys, variables=dict(variables or {}))) + "\r\n").encode()
            if self._socket is None or self.closed.is_set():
                future.set_exception(AmiConnectionError(f"{name}: not connected"))
                return future
            self._pending[action_id] = _Pending(name, future, time.monotonic())
            try:
                self._socket.sendall(wire)
            except OSError as exc:
                del self._pending[action_id]
                future.set_exception(AmiConnectionError(f"{name}: send failed: {exc}"))
        return future

    def request(
        self,
        name: str,
        headers: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        *,
        timeout: float,
    ) -> ActionResult:
        """Send an action and wait for its answer; raises instead of returning an error."""
        future = self.send_action(name, headers, variables)
        try:
            return future.result(timeout)
        except TimeoutError:
            self._forget(future)
            raise AmiActionTimeout(f"{name}: no answer from Asterisk in {timeout:g} s") from None

    def expire(self, timeout: float) -> None:
        """Fail every action sent more than ``timeout`` seconds ago (the per-action timeout)."""
        deadline = time.monotonic() - timeout
        with self._lock:
            late = [key for key, pending in self._pending.items() if pending.sent_at < deadline]
            expired = [self._pending.pop(key) for key in late]
        for pending in expired:
            pending.future.set_exception(
                AmiActionTimeout(f"{pending.name}: no answer from Asterisk in {timeout:g} s")
            )

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            # shutdown() wakes a reader blocked in recv(); close() alone may not.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._reader is None:
            self.closed.set()

    def join(self, timeout: float | None = None) -> None:
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout)

    def _read_loop(self) -> None:
        sock = self._socket
        try:
            received_at = self._clock()
            for message in self._early:
                self._dispatch(message, received_at)
            while sock is not None:
                data = sock.recv(RECV_BYTES)
                if not data:
                    break
                # One timestamp per chunk: a call's events are seconds apart, a chunk is not.
                received_at = self._clock()
                for message in self._framer.feed(data):
                    self._dispatch(message, received_at)
        except OSError as exc:
            if self._socket is not None:
                log.warning("AMI connection to %s:%s failed: %s", self.host, self.port, exc)
        finally:
            self._framer.close()
            self.closed.set()
            with self._lock:
                orphans = list(self._pending.values())
                self._pending.clear()
            for pending in orphans:
                pending.future.set_exception(
                    AmiConnectionError(f"{pending.name}: connection closed before its answer")
                )

    def _dispatch(self, message: AmiMessage, received_at: datetime) -> None:
        action_id = message.action_id
        pending = self._pending.get(action_id) if action_id is not None else None
        if pending is None:
            self._deliver(message, received_at)
            return
        if message.kind == "Response":
            if message.name.lower() == "error":
                self._settle(action_id, AmiActionError(message.get("Message") or "error"))
            elif (message.get("EventList") or "").lower() == "start":
                pending.list_response = message
            else:
                self._settle(action_id, ActionResult(message))
        elif pending.list_response is not None:
            if (message.get("EventList") or "").lower() != "complete":
                pending.items.append(message)
                return
            announced = message.get("ListItems")
            if announced is not None and announced.strip() != str(len(pending.items)):
                self.stats.list_mismatches += 1
                self._settle(
                    action_id,
                    AmiListError(
                        f"{pending.name}: Asterisk announced {announced} items,"
                        f" {len(pending.items)} arrived"
                    ),
                )
            else:
                items = tuple(pending.items)
                self._settle(action_id, ActionResult(pending.list_response, items))
        else:
            # An event naming an action before its response (not a list): just an event.
            self._deliver(message, received_at)

    def _settle(self, action_id: str | None, outcome: ActionResult | AmiError) -> None:
        with self._lock:
            pending = self._pending.pop(action_id or "", None)
        if pending is None:
            return
        if isinstance(outcome, AmiError):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)

    def _forget(self, future: Future[ActionResult]) -> None:
        with self._lock:
            for key, pending in list(self._pending.items()):
                if pending.future is future:
                    del self._pending[key]

    def _deliver(self, message: AmiMessage, received_at: datetime) -> None:
        # Defect 3: a failing handler costs one message, never the connection.
        try:
            self._on_event(message, received_at)
        except Exception:
            self.stats.handler_errors += 1
            log.exception("AMI event handler failed on %r", message)

    def _guarded(
        self, callback: Callable[[Future[ActionResult]], None]
    ) -> Callable[[Future[ActionResult]], None]:
        def run(future: Future[ActionResult]) -> None:
            try:
                callback(future)
            except Exception:
                self.stats.handler_errors += 1
                log.exception("AMI action callback failed")

        return run


class AmiClient:
    """Keeps one logged-in AMI session alive and feeds a handler, until told to stop.

    Each (re)connect: login with events off (a refusal raises ``AmiLoginError`` out of ``run``:
    no retries), server-side event filters, events on, then a ``CoreShowChannels`` snapshot for
    the handler to resync.
    While connected: a ``Ping`` every ``keepalive_interval``; no answer within
    ``action_timeout`` counts as a stall and the connection is replaced.
    """

    def __init__(
        self,
        settings: AmiSettings,
        handler: AmiHandler,
        *,
        rng: random.Random | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.stats = ConnectionStats()
        self._handler = handler
        # Made once: a CA file that cannot be read fails here, not at every reconnect.
        self._tls = client_tls(settings)
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._session: AmiSession | None = None

    @property
    def connected(self) -> bool:
        session = self._session
        return session is not None and not session.closed.is_set()

    def action(
        self,
        name: str,
        headers: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
    ) -> ActionResult:
        """Run one action on the live session (any thread), e.g. Originate for a callback."""
        session = self._session
        if session is None or session.closed.is_set():
            raise AmiConnectionError(f"{name}: not connected to Asterisk")
        return session.request(
            name, headers, variables, timeout=timeout or self.settings.action_timeout
        )

    def run(self, stop: threading.Event) -> None:
        """Connect, reconnect and deliver until ``stop`` is set; then log off and return."""
        failures = 0
        while not stop.is_set():
            session = AmiSession.from_settings(
                self.settings,
                self._handler.on_event,
                tls=self._tls,
                stats=self.stats,
                clock=self._clock,
            )
            try:
                session.open()
                session.login(
                    self.settings.username,
                    self.settings.secret,
                    self.settings.action_timeout,
                    events=False,
                )
            except AmiLoginError:
                session.close()
                raise
            except AmiError as exc:
                session.close()
                session.join()
                delay = self.backoff_delay(failures)
                failures += 1
                log.warning("AMI: %s; retrying in %.1f s", exc, delay)
                stop.wait(delay)
                continue
            self.stats.connections += 1
            log.info("AMI: logged in to %s:%s", self.settings.host, self.settings.port)
            connected_at = time.monotonic()
            self._session = session
            self._prepare(session)
            self._keep_alive(session, stop)
            self._session = None
            if stop.is_set():
                with contextlib.suppress(AmiError):
                    session.request("Logoff", timeout=self.settings.action_timeout)
            session.close()
            session.join()
            if not stop.is_set():
                # A connection that keeps dropping right after login backs off like a refusal.
                lasted = time.monotonic() - connected_at
                failures = failures + 1 if lasted < self.settings.reconnect_max_delay else 0
                delay = self.backoff_delay(failures)
                log.warning("AMI: connection lost; reconnecting in %.2f s", delay)
                stop.wait(delay)

    def backoff_delay(self, failures: int) -> float:
        """The site's one retry policy (casebook.retry) with the configured delays."""
        backoff = Backoff(self.settings.reconnect_initial_delay, self.settings.reconnect_max_delay)
        return backoff.delay(failures, self._rng)

    def _prepare(self, session: AmiSession) -> None:
        # Events stay off until every filter is in: the first filter makes Asterisk drop what
        # no filter admits yet, so a half-built list would silently lose events. Asterisk runs
        # one session's actions in order, so nothing here needs to wait for an answer.
        filters_done = _FilterAnswers()
        for expression in self.settings.event_filters:
            session.send_action(
                "Filter",
                {"Operation": "Add", "Filter": expression},
                on_done=filters_done.check(expression),
            )
        session.send_action("Events", {"EventMask": "on"}, on_done=_log_failure("Events: on"))
        # Whatever happened while no events came is in the channel list.
        session.send_action("CoreShowChannels", on_done=self._deliver_channels)

    def _deliver_channels(self, future: Future[ActionResult]) -> None:
        error = future.exception()
        if error is not None:
            # No snapshot this time: keep what we know, the next reconnect tries again.
            log.warning("AMI: channel resync failed: %s", error)
            return
        self._handler.on_channels(future.result().items, self._clock())

    def _keep_alive(self, session: AmiSession, stop: threading.Event) -> None:
        settings = self.settings
        # Short ticks: a lost connection is noticed within a quarter second, not an interval.
        tick = min(0.25, settings.keepalive_interval / 4, settings.action_timeout / 4)
        next_ping = time.monotonic() + settings.keepalive_interval
        ping: Future[ActionResult] | None = None
        while not session.closed.is_set() and not stop.is_set():
            stop.wait(tick)
            session.expire(settings.action_timeout)
            if ping is not None and ping.done() and isinstance(ping.exception(), AmiActionTimeout):
                self.stats.stalls += 1
                log.warning("AMI: no answer to Ping in %g s; reconnecting", settings.action_timeout)
                return
            # One Ping at a time: a newer one must not hide that the last got no answer.
            if time.monotonic() >= next_ping and (ping is None or ping.done()):
                ping = session.send_action("Ping")
                next_ping = time.monotonic() + settings.keepalive_interval


class _FilterAnswers:
    """The answers to one login's Filter actions. The generated manager.conf gives the hotline
    user no ``system`` write class (which Filter needs) and sets the same filters as its own
    ``eventfilter`` lines, so a refusal there is expected: said once, at INFO, not per filter."""

    def __init__(self) -> None:
        self._refusal_told = False

    def check(self, expression: str) -> Callable[[Future[ActionResult]], None]:
        def checked(future: Future[ActionResult]) -> None:
            error = future.exception()
            if error is None:
                return
            if isinstance(error, AmiActionError) and "permission denied" in str(error).lower():
                if not self._refusal_told:
                    self._refusal_told = True
                    log.info(
                        "AMI: this user may not add event filters (no 'system' write class); "
                        "the eventfilter lines of its manager.conf section filter instead"
                    )
                return
            log.warning("AMI: event filter %r failed: %s", expression, error)

        return checked


def _log_failure(what: str) -> Callable[[Future[ActionResult]], None]:
    def check(future: Future[ActionResult]) -> None:
        error = future.exception()
        if error is not None:
            log.warning("AMI: %s failed: %s", what, error)

    return check
