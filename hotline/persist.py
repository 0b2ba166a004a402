"""What the AMI listener does with a finished call: store it once (keyed by Linkedid), ingest
its recordings, queue the caller's message for transcription, and, after a gap in the AMI
connection, recover calls from recordings on disk that no call owns.

``CallStore`` is the tracker's sink. It writes on a thread of its own so a slow or briefly
unavailable database never holds up reading AMI, and it keeps a call until the database took
it (a locked or unreachable database is retried, never dropped).
"""

from __future__ import annotations

import contextlib
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
# How many reports one transaction takes at most: under load, writes are grouped.
BATCH = 500


@dataclass(frozen=True)
class _Report:
    linkedid: str
    work: Work
    progress: bool = False  # a note on a call in progress: moot once the call's end is written


class CallStore:
    """The tracker's sink: queue what it reports, write it in order on a thread of its own,
    grouping what has piled up into one transaction."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.stats = StoreStats()
        self._queue: queue.Queue[_Report | None] = queue.Queue()
        self._thread = threading.Thread(target=self._write_loop, name="call-store", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def call_noted(self, call: TrackedCall) -> None:
        self._queue.put(_Report(call.linkedid, lambda s: note_call(s, call), progress=True))

    def call_finished(self, call: TrackedCall) -> None:
        def finish(session: Session) -> None:
            stored = store_call(session, self.settings, call)
            if stored.finished_now:
                self.stats.stored += 1
            else:
                self.stats.duplicates += 1

        self._queue.put(_Report(call.linkedid, finish))

    def calls_alive(self, linkedids: set[str], at: datetime) -> None:
        self._queue.put(
            _Report("resync", lambda s: close_vanished(s, self.settings, linkedids, at))
        )

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self) -> None:
        """Write what is queued, then stop (SIGTERM: nothing tracked is lost)."""
        self._queue.put(None)
        self._thread.join()

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._write(batch)
                    return
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[_Report]) -> None:
        finished = {r.linkedid for r in batch if not r.progress}
        todo = [r for r in batch if not (r.progress and r.linkedid in finished)]
        stored_before = self.stats.stored
        try:
            self._retrying(lambda session: [report.work(session) for report in todo], "batch")
        except Exception:
            # One bad report must not take the others down: write them one by one.
            self.stats.stored = stored_before
            for report in todo:
                with contextlib.suppress(Exception):
                    self._retrying(report.work, report.linkedid)

    def _retrying(self, work: Work, what: str) -> None:
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
                self.stats.errors += 1
                # The facts stay in the log, so an operator can still recover the call.
                log.exception("call %s could not be stored", what)
                raise
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
