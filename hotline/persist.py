"""What the AMI listener does with a finished call: store it once (keyed by Linkedid), ingest
its recordings, queue the caller's message for transcription, and, after a gap in the AMI
connection, recover calls from recordings on disk that no call owns.

``CallStore`` is the tracker's sink. It writes on a thread of its own so a slow or briefly
unavailable database never holds up reading AMI, and it keeps a call until the database took
it (a locked or unreachable database is retried, never dropped).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from casebook import calls, jobs
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.errors import DatabaseUnavailable
from casebook.models import Call, Case, Recording, RecordingKind
from hotline.config import Settings
from hotline.tracker import TrackedCall
from recordings.ingest import ingest_call_recording

log = logging.getLogger(__name__)

LISTENER = Actor.system("listener")
# The dialplan names the whole-call recording after the hotline channel's Uniqueid.
RECORDING_NAME = re.compile(r"^hotline-(?P<uniqueid>\d+\.\d+)\.wav$")


def store_call(session: Session, settings: Settings, call: TrackedCall) -> calls.StoredCall:
    stored = calls.record_call(
        session,
        settings,
        LISTENER,
        linkedid=call.linkedid,
        uniqueid=call.uniqueid,
        caller_number=call.caller_number,
        did=call.did,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        hangup_cause=call.hangup_cause,
        hangup_cause_text=call.hangup_cause_text,
        case_reference=call.case_reference,
        ivr_choices=call.ivr_choices,
        recording_path=call.recording_path,
    )
    if not stored.finished_now:
        return stored
    finish_recordings(session, settings, stored, call.message_path)
    return stored


def finish_recordings(
    session: Session, settings: Settings, stored: calls.StoredCall, message_path: str | None
) -> None:
    """Ingest a finished call's recordings and queue what the agent needs transcribed."""
    now = utcnow()
    whole_call = None
    if stored.call.recording_path:
        whole_call = ingest_call_recording(
            session, settings, LISTENER, stored.call, stored.call.recording_path
        )
    if stored.case is None:
        return
    # The caller's own message transcribes best; the whole-call mix only when there is none.
    if message_path:
        message = ingest_call_recording(
            session, settings, LISTENER, stored.call, message_path, kind=RecordingKind.MESSAGE
        )
        jobs.enqueue_transcription(session, LISTENER, message, now)
    elif whole_call is not None and not _has_message(session, stored.case):
        jobs.enqueue_transcription(session, LISTENER, whole_call, now)


def note_call(session: Session, call: TrackedCall) -> None:
    calls.note_call(
        session,
        linkedid=call.linkedid,
        uniqueid=call.uniqueid,
        caller_number=call.caller_number,
        did=call.did,
        started_at=call.started_at,
        recording_path=call.recording_path,
    )


def close_vanished(session: Session, settings: Settings, alive: set[str], at: datetime) -> None:
    for stored in calls.close_vanished_calls(session, settings, LISTENER, alive, at):
        log.warning("call %s ended while the listener was away", stored.call.linkedid)
        finish_recordings(session, settings, stored, None)


def _has_message(session: Session, case: Case) -> bool:
    query = select(Recording.id).where(
        Recording.case_id == case.id, Recording.kind == RecordingKind.MESSAGE.value
    )
    return session.exec(query).first() is not None


@dataclass
class StoreStats:
    stored: int = 0
    duplicates: int = 0
    retries: int = 0
    errors: int = 0


Work = Callable[[Session], object]


class CallStore:
    """The tracker's sink: queue what it reports, write it on a thread of its own, in order."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.stats = StoreStats()
        self._queue: queue.Queue[tuple[str, Work] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._write_loop, name="call-store", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def call_noted(self, call: TrackedCall) -> None:
        self._queue.put((call.linkedid, lambda session: note_call(session, call)))

    def call_finished(self, call: TrackedCall) -> None:
        def finish(session: Session) -> object:
            stored = store_call(session, self.settings, call)
            if stored.finished_now:
                self.stats.stored += 1
            else:
                self.stats.duplicates += 1
            return stored

        self._queue.put((call.linkedid, finish))

    def calls_alive(self, linkedids: set[str], at: datetime) -> None:
        self._queue.put(
            ("resync", lambda session: close_vanished(session, self.settings, linkedids, at))
        )

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self) -> None:
        """Write what is queued, then stop (SIGTERM: nothing tracked is lost)."""
        self._queue.put(None)
        self._thread.join()

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            self._write(*item)

    def _write(self, what: str, work: Work) -> None:
        delay = 0.5
        while True:
            try:
                self.db.run(work)
            except DatabaseUnavailable as exc:
                # Keep it: the database comes back, or the operator sees this every time.
                self.stats.retries += 1
                log.error("call %s not stored yet, retrying in %.0f s: %s", what, delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            except Exception:
                # A bug must not stop every later call from being stored; the facts stay in the log.
                self.stats.errors += 1
                log.exception("call %s could not be stored", what)
            return


def reconcile_recordings(
    session: Session,
    settings: Settings,
    *,
    live_uniqueids: set[str],
    quiet_for: timedelta = timedelta(minutes=2),
    now: datetime | None = None,
) -> list[Call]:
    """Calls that ended while the listener was away leave only their recording: store a call
    for each ``hotline-<uniqueid>.wav`` no row owns, linked to the case its channel registered.
    Files still being written (recently modified, or of a live call) are left for later."""
    moment = now or utcnow()
    root = settings.recordings.root
    if not root.is_dir():
        return []
    recovered = []
    known = set(session.exec(select(Recording.path)).all())
    known |= {path for path in session.exec(select(Call.recording_path)).all() if path}
    for path in sorted(root.glob("hotline-*.wav")):
        match = RECORDING_NAME.match(path.name)
        if match is None or str(path) in known or match["uniqueid"] in live_uniqueids:
            continue
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        if moment - modified < quiet_for:
            continue
        call = _recover(session, settings, Path(path), match["uniqueid"], modified)
        if call is not None:
            recovered.append(call)
    return recovered


def _recover(
    session: Session, settings: Settings, path: Path, uniqueid: str, ended: datetime
) -> Call | None:
    case = session.exec(select(Case).where(Case.call_uniqueid == uniqueid)).first()
    linkedid = case.call_linkedid if case is not None and case.call_linkedid else uniqueid
    stored = calls.record_call(
        session,
        settings,
        LISTENER,
        linkedid=linkedid,
        uniqueid=uniqueid,
        caller_number=case.caller_number if case is not None else None,
        did=settings.ami.hotline_exten,
        started_at=None,
        answered_at=None,
        ended_at=ended,
        hangup_cause=None,
        hangup_cause_text="recovered from the recording after a listener gap",
        case_reference=case.reference if case is not None else None,
        ivr_choices=(),
        recording_path=str(path),
    )
    if not stored.finished_now:
        return None
    finish_recordings(session, settings, stored, None)
    log.warning("call %s recovered from %s (listener was away)", linkedid, path.name)
    return stored.call
