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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from sqlmodel import Session

from casebook import calls, jobs
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.errors import DatabaseUnavailable
from casebook.models import RecordingKind
from casebook.retry import Backoff, retry_call
from hotline.app.config import Settings
from hotline.app.dial import ingest_callback_recording
from hotline.tracker import TrackedCall
from recordings import catalogue
from recordings.ingest import (
    FileFacts,
    IngestedRecording,
    RecordingError,
    inspect_files,
    resolve_path,
    store_call_recordings,
)

log = logging.getLogger(__name__)

LISTENER = Actor.system("listener")
# Each write already rides out a short outage inside Database.run; this is the wait between
# those, for ever (deadline None), so a long outage delays calls but never drops one.
_WRITE_BACKOFF = Backoff(initial=0.5, cap=30.0)
# The dialplan names the whole-call recording after the call's Linkedid and the hotline
# channel's Uniqueid (hotline-<linkedid>-<uniqueid>.wav; before, hotline-<uniqueid>.wav), and
# a callback's after the callback and the recording channel (callback-<id>-<uniqueid>.wav).
RECORDING_NAME = re.compile(
    r"^(?:hotline-(?:(?P<linkedid>\d+\.\d+)-)?|callback-(?P<callback>\d+)-)"
    r"(?P<uniqueid>\d+\.\d+)\.wav$"
)


def _facts(call: TrackedCall) -> calls.CallFacts:
    return calls.CallFacts(
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
        served=not call.abandoned,
    )


def store_calls(
    session: Session,
    settings: Settings,
    finished: Sequence[TrackedCall],
    known: Mapping[str, FileFacts | RecordingError] | None = None,
) -> list[calls.StoredCall]:
    """Store finished calls (once per Linkedid), then ingest the recordings of those stored
    now (``known``: facts of their files, read before) and queue what the agents need
    transcribed."""
    stored = calls.record_calls(session, settings, [_facts(c) for c in finished])
    finished_now = [
        (s, c.message_path) for s, c in zip(stored, finished, strict=True) if s.finished_now
    ]
    finish_recordings(session, settings, finished_now, known)
    return stored


def finish_recordings(
    session: Session,
    settings: Settings,
    finished: Sequence[tuple[calls.StoredCall, str | None]],
    known: Mapping[str, FileFacts | RecordingError] | None = None,
) -> None:
    """Ingest finished calls' recordings (the whole call; the caller's message when the call
    has a case), queue what the agent needs transcribed (the caller's own message transcribes
    best; the whole-call mix only when the case has no message), and audit each call with
    what was stored for it."""
    wanted: list[tuple[calls.StoredCall, str, RecordingKind]] = []
    for stored, message_path in finished:
        if stored.recording_path:
            wanted.append((stored, stored.recording_path, RecordingKind.CALL))
        if stored.case_id is not None and message_path:
            wanted.append((stored, message_path, RecordingKind.MESSAGE))
    ingested = iter(store_call_recordings(session, settings, LISTENER, wanted, known))
    recorded: list[tuple[calls.StoredCall, list[dict[str, Any]]]] = []
    transcribe: list[IngestedRecording] = []
    whole_calls: list[tuple[int, IngestedRecording]] = []
    for stored, message_path in finished:
        whole_call = next(ingested) if stored.recording_path else None
        message = next(ingested) if stored.case_id is not None and message_path else None
        recordings = [r for r in (whole_call, message) if r is not None]
        recorded.append((stored, [r.audit_detail() for r in recordings]))
        if message is not None:
            transcribe.append(message)
        elif stored.case_id is not None and whole_call is not None:
            whole_calls.append((stored.case_id, whole_call))
    with_message = catalogue.cases_with_message(session, [case_id for case_id, _ in whole_calls])
    transcribe += [recording for case_id, recording in whole_calls if case_id not in with_message]
    jobs.enqueue_transcriptions(session, LISTENER, transcribe, utcnow())
    calls.audit_recorded(session, LISTENER, recorded)


def note_calls(session: Session, settings: Settings, noted: Sequence[TrackedCall]) -> None:
    calls.note_calls(
        session,
        [
            calls.CallNote(
                linkedid=call.linkedid,
                uniqueid=call.uniqueid,
                caller_number=call.caller_number,
                did=call.did,
                started_at=call.started_at,
                recording_path=call.recording_path,
            )
            for call in noted
        ],
        settings.phone,
    )


def close_vanished(session: Session, settings: Settings, alive: set[str], at: datetime) -> None:
    closed = calls.close_vanished_calls(session, settings, alive, at)
    for stored in closed:
        log.warning("call %s ended while the listener was away", stored.linkedid)
    finish_recordings(session, settings, [(stored, None) for stored in closed])


@dataclass
class StoreStats:
    stored: int = 0
    duplicates: int = 0
    retries: int = 0
    errors: int = 0


# How many reports one transaction takes at most: under load, writes are grouped.
BATCH = 500


class _Kind(Enum):
    NOTED = "noted"  # a call in progress: moot once the call's end is written
    FINISHED = "finished"
    ALIVE = "alive"  # a resync's snapshot of the calls still on the PBX


@dataclass(frozen=True)
class _Report:
    kind: _Kind
    linkedid: str
    call: TrackedCall | None = None
    alive: frozenset[str] = frozenset()
    at: datetime | None = None


@dataclass
class _Outcome:
    stored: int = 0
    duplicates: int = 0


def _write_reports(
    session: Session,
    settings: Settings,
    reports: Sequence[_Report],
    known: Mapping[str, FileFacts | RecordingError] | None = None,
) -> _Outcome:
    """Write reports in order, grouped: the notes and finished calls between two resyncs each
    in one go (after coalescing they name different calls, so their order does not matter),
    a resync where it came. ``known``: facts of recordings read before."""
    outcome = _Outcome()
    noted: list[TrackedCall] = []
    finished: list[TrackedCall] = []

    def write_group() -> None:
        note_calls(session, settings, noted)
        for stored in store_calls(session, settings, finished, known):
            if stored.finished_now:
                outcome.stored += 1
            else:
                outcome.duplicates += 1
        noted.clear()
        finished.clear()

    for report in reports:
        if report.kind is _Kind.ALIVE:
            write_group()
            assert report.at is not None  # an ALIVE report has its time
            close_vanished(session, settings, set(report.alive), report.at)
        elif report.call is not None:
            (noted if report.kind is _Kind.NOTED else finished).append(report.call)
    write_group()
    return outcome


class CallStore:
    """The tracker's sink: queue what it reports, write it in order on a thread of its own,
    grouping what has piled up into one transaction. The recordings of a batch's finished
    calls are read and hashed before the transaction begins, so the write lock (which the IVR
    also needs) is never held while waiting on the disk."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.stats = StoreStats()
        self._queue: queue.Queue[_Report | None] = queue.Queue()
        self._thread = threading.Thread(target=self._write_loop, name="call-store", daemon=True)
        self._committed = threading.Condition()

    def start(self) -> None:
        self._thread.start()

    def call_noted(self, call: TrackedCall) -> None:
        self._queue.put(_Report(_Kind.NOTED, call.linkedid, call))

    def call_finished(self, call: TrackedCall) -> None:
        self._queue.put(_Report(_Kind.FINISHED, call.linkedid, call))

    def calls_alive(self, linkedids: set[str], at: datetime) -> None:
        self._queue.put(_Report(_Kind.ALIVE, "resync", alive=frozenset(linkedids), at=at))

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
        finished = {r.linkedid for r in batch if r.kind is _Kind.FINISHED}
        todo = [r for r in batch if not (r.kind is _Kind.NOTED and r.linkedid in finished)]
        known = inspect_files(
            resolve_path(self.settings, path)
            for r in todo
            if r.kind is _Kind.FINISHED and r.call is not None
            for path in (r.call.recording_path, r.call.message_path)
            if path
        )
        try:
            self._count(self._retrying(todo, known, "batch"))
        except Exception:
            # One bad report must not take the others down: write them one by one.
            for report in todo:
                with contextlib.suppress(Exception):
                    self._count(self._retrying([report], known, report.linkedid))

    def _count(self, outcome: _Outcome) -> None:
        # Counted once committed: ``stored`` never runs ahead of the database.
        with self._committed:
            self.stats.stored += outcome.stored
            self.stats.duplicates += outcome.duplicates
            self._committed.notify_all()

    def wait_until_stored(self, calls: int, timeout: float) -> bool:
        """Whether ``calls`` calls in all are committed within ``timeout`` seconds (woken by
        each commit, not polling: a poller would take the GIL from the writer it waits on)."""
        with self._committed:
            return self._committed.wait_for(lambda: self.stats.stored >= calls, timeout)

    def _retrying(
        self,
        reports: Sequence[_Report],
        known: Mapping[str, FileFacts | RecordingError],
        what: str,
    ) -> _Outcome:
        def note_retry(exc: Exception, delay: float) -> None:
            self.stats.retries += 1
            log.error("call %s not stored yet, retrying in %.0f s: %s", what, delay, exc)

        try:
            # The database comes back, or the operator sees this error at every retry.
            return retry_call(
                lambda: self.db.run(
                    lambda session: _write_reports(session, self.settings, reports, known)
                ),
                _WRITE_BACKOFF,
                retryable=lambda exc: isinstance(exc, DatabaseUnavailable),
                on_retry=note_retry,
            )
        except Exception:
            self.stats.errors += 1
            # The facts stay in the log, so an operator can still recover the call.
            log.exception("call %s could not be stored", what)
            raise


def reconcile_recordings(
    session: Session,
    settings: Settings,
    *,
    live_uniqueids: set[str],
    quiet_for: timedelta = timedelta(minutes=2),
    now: datetime | None = None,
) -> list[calls.StoredCall]:
    """Calls that ended while the listener was away leave only their recording: store a call
    for each ``hotline-[<linkedid>-]<uniqueid>.wav`` no row owns (``calls.recover_call``); and
    ingest each ``callback-<id>-<uniqueid>.wav`` its dialler left (the call outlived it).
    Files still being written (recently modified, or of a live channel) are left for later."""
    orphans = _quiet_orphans(session, settings, live_uniqueids, quiet_for, now or utcnow())
    recovered = []
    for path, match, modified in orphans:
        if match["callback"] is not None:
            case_id = catalogue.callback_case(session, int(match["callback"]))
            ingest_callback_recording(session, settings, LISTENER, str(path), case_id)
            log.warning("callback recording %s ingested after its call ended", path.name)
            continue
        stored = calls.recover_call(
            session,
            settings,
            linkedid=match["linkedid"],
            uniqueid=match["uniqueid"],
            did=settings.ami.hotline_exten,
            ended_at=modified,
            recording_path=str(path),
        )
        if stored.finished_now:
            finish_recordings(session, settings, [(stored, None)])
            log.warning("call %s recovered from %s (listener was away)", stored.linkedid, path.name)
            recovered.append(stored)
    return recovered


def _quiet_orphans(
    session: Session, settings: Settings, live: set[str], quiet_for: timedelta, now: datetime
) -> list[tuple[Path, re.Match[str], datetime]]:
    """Recordings under the root that no row names, not of a live channel and not written to
    for ``quiet_for`` (so Asterisk has closed them): path, name's parts, last written."""
    root = settings.recordings.root
    if not root.is_dir():
        return []
    known = catalogue.known_paths(session)
    orphans = []
    for path in sorted(root.iterdir()):
        match = RECORDING_NAME.match(path.name)
        if match is None or str(path) in known:
            continue
        if {match["uniqueid"], match["linkedid"]} & live:
            continue
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        if now - modified >= quiet_for:
            orphans.append((path, match, modified))
    return orphans
