"""The long-running parts of the hotline as components with one shape (start, stop, state), so
`hotline listen|agi|worker|scheduler|api` run one each and `hotline serve` runs them together
(``run_components``). Each reports a heartbeat with its state for `hotline status`."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlmodel import Session

from casebook import audit, operations
from casebook.clock import utcnow
from casebook.db import Database
from casebook.errors import CasebookError
from casebook.models import TranscriptionJob
from casebook.site_secrets import SiteSecretError
from hotline.ami import AmiLoginError
from hotline.app.checks import Check, run_checks
from hotline.app.config import Settings
from hotline.app.http_server import ApiServer, ApiStartError
from hotline.app.lifecycle import settle_heap, stop_on_signals, wait_for_stop
from hotline.app.persist import CallStore, reconcile_recordings
from hotline.app.scheduler import build_scheduler
from hotline.runners import build_client
from ivr_flows import AgiServer, load_flow
from ivr_flows.casebook_backend import CasebookBackend
from ivr_flows.engine import MESSAGE_FILES
from transcription.streaming import RecordingFollower
from transcription.worker import TranscriptionWorker

log = logging.getLogger(__name__)

INSTANCE = f"{socket.gethostname()}:{os.getpid()}"


class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def state(self) -> dict[str, Any]: ...


class Every:
    """Run ``work`` every ``seconds`` on a thread of its own until stopped; errors are logged
    and the next round runs anyway."""

    def __init__(self, seconds: float, work: Callable[[], None], name: str) -> None:
        self.seconds = seconds
        self.work = work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            try:
                self.work()
            except Exception:
                log.exception("%s failed; trying again in %.0f s", self._thread.name, self.seconds)
            if self._stop.wait(self.seconds):
                return


class Heartbeats:
    """Reports every component's state to the database; once they have stopped, that they
    stopped, with the state each had when told to stop (a stopped one may not say)."""

    def __init__(self, db: Database, components: list[Component]) -> None:
        self.db = db
        self.components = components
        self._timer = Every(operations.HEARTBEAT_SECONDS, self.beat, "heartbeat")
        self._last: list[dict[str, Any]] = []

    def beat(self) -> None:
        self._write([component.state() for component in self.components], stopped=False)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        """No more beats; call ``stopped`` once the components have stopped."""
        self._timer.stop()
        self._last = [component.state() for component in self.components]

    def stopped(self) -> None:
        self._write(self._last, stopped=True)

    def _write(self, states: list[dict[str, Any]], *, stopped: bool) -> None:
        def work(session: Session) -> None:
            for component, state in zip(self.components, states, strict=True):
                operations.beat(session, component.name, INSTANCE, state, utcnow(), stopped=stopped)

        self.db.run(work)


class Listener:
    """The AMI listener: tracks calls, stores finished ones, recovers calls from orphaned
    recordings after a gap."""

    name = "listener"

    def __init__(
        self,
        db: Database,
        settings: Settings,
        give_up: threading.Event,
        reconcile_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.settings = settings
        self.store = CallStore(db, settings)
        self.client, self.tracker = build_client(settings.ami, self.store)
        self.failure: AmiLoginError | None = None
        self._give_up = give_up
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ami-listener", daemon=True)
        self._reconcile = Every(reconcile_seconds, self.reconcile, "reconcile")

    def start(self) -> None:
        self.store.start()
        self._thread.start()
        self._reconcile.start()

    def _run(self) -> None:
        try:
            self.client.run(self._stop)
        except AmiLoginError as exc:
            # A refused login is not retried (no storm); the process reports it and stops.
            self.failure = exc
            log.error("AMI login refused: %s", exc)
            self._give_up.set()

    def reconcile(self) -> None:
        live = {uid for call in self.tracker.live_calls() for uid in call.channels}
        self.db.run(
            lambda session: reconcile_recordings(session, self.settings, live_uniqueids=live)
        )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._reconcile.stop()
        self.store.stop()

    def state(self) -> dict[str, Any]:
        return {
            "connected": self.client.connected,
            "live_calls": len(self.tracker.live_calls()),
            "refused_calls": self.tracker.stats.calls_refused,  # over ami.max_live_calls
            "stored": self.store.stats.stored,
            "waiting_to_store": self.store.pending,
            "ami_warnings": self.client.stats.warnings,
            "reconnects": max(self.client.stats.connections - 1, 0),
        }


class Scheduler:
    name = operations.SCHEDULER

    def __init__(self, db: Database, settings: Settings) -> None:
        self._jobs = build_scheduler(db, settings)

    def start(self) -> None:
        self._jobs.start()

    def stop(self) -> None:
        self._jobs.shutdown(wait=True)

    def state(self) -> dict[str, Any]:
        return {"jobs": len(self._jobs.get_jobs())}


class Agi:
    name = "agi"

    def __init__(self, db: Database, settings: Settings) -> None:
        self.settings = settings
        flow = load_flow(settings.ivr.flow_file)
        self.server = AgiServer(settings, CasebookBackend(db, settings), flow=flow)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        # Calls in progress may finish their step; then they are cut.
        self.server.stop(grace=self.settings.agi.command_timeout)

    def state(self) -> dict[str, Any]:
        host, port = self.server.address
        return {"address": f"{host}:{port}"}


def run_until_signal(db: Database, components: list[Component], stop: threading.Event) -> None:
    """Start the components, report heartbeats, and on SIGTERM/SIGINT (or ``stop``) stop them in
    reverse order, each finishing what it holds; then record that they stopped (so `hotline
    status` tells a clean stop from a silent, killed instance)."""
    started: list[Component] = []
    beats = Heartbeats(db, components)
    with stop_on_signals() as received:
        try:
            for component in components:
                component.start()
                started.append(component)
            beats.start()
            settle_heap()
            wait_for_stop(stop, received)
            beats.stop()
        finally:
            for component in reversed(started):
                component.stop()
    beats.stopped()


# --- what `hotline serve` and the single-component commands run --------------------------------

COMPONENT_NAMES = ("listener", "agi", "worker", "scheduler", "api")

JobDone = Callable[[TranscriptionWorker, TranscriptionJob], None]


class ServeError(Exception):
    """A component could not start, or stopped for good (one line for the operator)."""


def make_components(
    names: Sequence[str],
    db: Database,
    settings: Settings,
    give_up: threading.Event,
    *,
    concurrency: int | None = None,
    on_job_done: JobDone | None = None,
) -> list[Component]:
    """The named components (of ``COMPONENT_NAMES``), in that order, on one database."""
    makers: dict[str, Callable[[], list[Component]]] = {
        "listener": lambda: [Listener(db, settings, give_up)],
        "agi": lambda: [Agi(db, settings)],
        "scheduler": lambda: [Scheduler(db, settings)],
        "worker": lambda: transcription_components(db, settings, concurrency, on_job_done),
        "api": lambda: [ApiServer(db, settings)],
    }
    unknown = [name for name in names if name not in makers]
    if unknown:
        raise ServeError(f"unknown component {', '.join(unknown)} (choose from {COMPONENT_NAMES})")
    return [component for name in names for component in makers[name]()]


def transcription_components(
    db: Database, settings: Settings, concurrency: int | None, on_job_done: JobDone | None
) -> list[Component]:
    """The worker, and (transcription.stream_messages) the follower that transcribes the
    callers' messages while they are recorded, in the worker's process: the worker is where the
    model is loaded and, on a site of several machines, the recordings folder is shared with it,
    while the IVR that starts the recording may run elsewhere. The follower is the worker's
    transcriber, in batches (the recordings it followed finished from their streams, the rest
    transcribed together); it starts first and stops last."""
    if concurrency is not None:  # --concurrency: as many passes, and the model's replicas for them
        settings.transcription.concurrency = concurrency
    if not settings.transcription.stream_messages:
        return [TranscriptionWorker(db, settings, on_done=on_job_done)]
    follower = RecordingFollower(settings.recordings.root, MESSAGE_FILES, settings.transcription)
    worker = TranscriptionWorker(
        db,
        settings,
        on_done=on_job_done,
        batch_transcriber=follower.transcribe_batch,
    )
    return [follower, worker]


def sign_audit_checkpoints(db: Database, settings: Settings) -> audit.CheckpointSigner:
    """The server holds the site's audit key: its appends sign checkpoints from now on, and
    checkpoints committed but never written to the file (a stop between the two) are written
    now. A missing or unsafe key stops the start with its one line."""
    try:
        signer = audit.CheckpointSigner.for_site(settings)
    except SiteSecretError as exc:
        raise ServeError(str(exc)) from exc
    db.sign_audit_checkpoints(signer)
    written = db.run(lambda session: audit.catch_up_checkpoint_file(session, signer))
    if written:
        log.warning("wrote %d audit checkpoint(s) missing from %s", written, signer.file)
    return signer


def sign_the_stop(db: Database, signer: audit.CheckpointSigner) -> None:
    """A clean stop: the log ends here for now, signed (verify finds an entry deleted from the
    end behind the server's back). A database gone at that moment does not turn the stop into
    a failure: the entries since the last checkpoint stay unsigned until the next one."""
    try:
        db.run(lambda session: audit.write_checkpoint(session, signer, audit.SHUTDOWN))
    except CasebookError as exc:
        log.error("the audit log could not be signed at this stop: %s", exc)


def run_components(
    settings: Settings,
    names: Sequence[str],
    *,
    concurrency: int | None = None,
    on_check: Callable[[Check], None] | None = None,
    on_job_done: JobDone | None = None,
) -> None:
    """Check what the components need (each check is handed to ``on_check``), start them, and
    run until SIGTERM or SIGINT, which stops them, each finishing its work. A failed check, a
    component that cannot start and one that gives up for good raise ``ServeError``."""
    checks = run_checks(settings, list(names))
    for check in checks:
        if on_check is not None:
            on_check(check)
    if not all(check.ok for check in checks):
        raise ServeError("start-up checks failed (see above)")
    db = Database(settings.database)
    give_up = threading.Event()
    try:
        signer = sign_audit_checkpoints(db, settings)
        components = make_components(
            names, db, settings, give_up, concurrency=concurrency, on_job_done=on_job_done
        )
        try:
            run_until_signal(db, components, give_up)
            sign_the_stop(db, signer)
        except ApiStartError as exc:
            raise ServeError(str(exc)) from exc
        except OSError as exc:
            agi = settings.agi
            raise ServeError(f"cannot listen on {agi.host}:{agi.port}: {exc.strerror}") from exc
    finally:
        db.dispose()
    for component in components:
        if isinstance(component, Listener) and component.failure is not None:
            ami = settings.ami
            raise ServeError(f"AMI at {ami.host}:{ami.port}: {component.failure}")
        if isinstance(component, TranscriptionWorker) and component.fatal is not None:
            raise ServeError(f"transcription: {component.fatal}")
