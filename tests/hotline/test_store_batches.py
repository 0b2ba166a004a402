"""The listener's writes in batches: what piled up is written in one transaction, with the
same rules as one call at a time (once per Linkedid, one callback per waiting number, every
recording's facts or its missing mark, an unbroken audit chain)."""

from __future__ import annotations

import hashlib
import os
import time
import wave
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlmodel import col, select

from casebook import audit, cases
from casebook.access import Actor
from casebook.db import Database
from casebook.models import AuditEvent, Call, Callback, Recording, RecordingKind, TranscriptionJob
from hotline.app import persist
from hotline.app.config import Settings
from hotline.app.persist import CallStore, store_calls
from hotline.runners import replay
from hotline.tracker import CallTracker, TrackedCall, TrackerRules
from recordings.ingest import FileFacts, RecordingError, inspect_files
from tests.hotline.conftest import FIXTURES, CollectingSink

START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def wav(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x01" * 800)
    return str(path)


def tracked(
    linkedid: str,
    number: str | None,
    *,
    reference: str | None = None,
    recording: str | None = None,
    message: str | None = None,
    ended: bool = True,
) -> TrackedCall:
    return TrackedCall(
        linkedid=linkedid,
        uniqueid=linkedid,
        caller_number=number,
        caller_name=None,
        did="15654",
        started_at=START,
        answered_at=START + timedelta(seconds=1),
        ended_at=START + timedelta(seconds=31) if ended else None,
        hangup_cause=16 if ended else None,
        hangup_cause_text="Normal Clearing" if ended else None,
        case_reference=reference,
        recording_path=recording,
        message_path=message,
        ivr_choices=("HotlineMenu=1",),
        channels=(linkedid,),
    )


def actions(db: Database) -> list[str]:
    with db.session() as s:
        return [e.action for e in s.exec(select(AuditEvent).order_by(col(AuditEvent.id)))]


def entries(db: Database, action: str) -> list[AuditEvent]:
    with db.session() as s:
        query = select(AuditEvent).where(AuditEvent.action == action)
        return list(s.exec(query.order_by(col(AuditEvent.id))))


def chain_is_intact(db: Database) -> bool:
    with db.session() as s:
        return audit.check_chain(s.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).intact


def test_one_number_twice_in_a_batch_asks_for_one_callback(
    db: Database, settings: Settings
) -> None:
    batch = [tracked("a.1", "0920000002"), tracked("a.2", "0920000002"), tracked("a.3", None)]
    stored = db.run(lambda s: store_calls(s, settings, batch))
    assert [s.finished_now for s in stored] == [True, True, True]
    assert all(s.abandoned for s in stored)
    with db.session() as s:
        callbacks = s.exec(select(Callback)).all()
    assert [(c.phone_number, c.call_id) for c in callbacks] == [("0920000002", stored[0].id)]
    # One entry per call, naming the callback it asked for.
    assert [e.detail["callback"] for e in entries(db, "call.record")] == [
        callbacks[0].id,
        None,
        None,
    ]
    # A later batch while that callback still waits asks for none either.
    db.run(lambda s: store_calls(s, settings, [tracked("a.4", "0920000002")]))
    with db.session() as s:
        assert len(s.exec(select(Callback)).all()) == 1
    assert chain_is_intact(db)


def test_a_call_finished_twice_in_a_batch_is_stored_once(db: Database, settings: Settings) -> None:
    batch = [tracked("d.1", "0930000001"), tracked("d.1", "0930000001")]
    first, again = db.run(lambda s: store_calls(s, settings, batch))
    assert first.finished_now and not again.finished_now
    assert first.id == again.id
    with db.session() as s:
        assert len(s.exec(select(Call)).all()) == 1
        assert len(s.exec(select(Callback)).all()) == 1
    assert actions(db).count("call.record") == 1
    replay = db.run(lambda s: store_calls(s, settings, [tracked("d.1", "0930000001")]))
    assert not replay[0].finished_now


def test_a_batch_with_a_missing_and_a_present_recording(db: Database, settings: Settings) -> None:
    root = settings.recordings.root
    present = wav(root / "hotline-p.1.wav")
    gone = str(root / "hotline-m.1.wav")
    batch = [
        tracked("p.1", "0940000001", recording=present),
        tracked("m.1", "0940000002", recording=gone),
    ]
    db.run(lambda s: store_calls(s, settings, batch))
    with db.session() as s:
        calls = {c.linkedid: c for c in s.exec(select(Call))}
        recordings = {r.path: r for r in s.exec(select(Recording))}
        missing = s.exec(select(AuditEvent).where(AuditEvent.action == "recording.missing")).all()
    assert not calls["p.1"].recording_missing and calls["m.1"].recording_missing
    assert recordings[present].sha256 is not None and recordings[present].call_id == calls["p.1"].id
    assert recordings[gone].sha256 is None and recordings[gone].call_id == calls["m.1"].id
    assert recordings[present].retained_until is not None
    assert [e.detail["call"] for e in missing] == ["m.1"]
    # The call's entry names its recording with the hash it was stored with.
    recorded = {e.object_id: e.detail["recordings"] for e in entries(db, "call.record")}
    assert [(r["path"], r["sha256"]) for r in recorded["p.1"]] == [
        (present, recordings[present].sha256)
    ]
    assert [(r["path"], r["sha256"]) for r in recorded["m.1"]] == [(gone, None)]
    assert chain_is_intact(db)


def test_a_batch_of_registered_calls_queues_each_message_once(
    db: Database, settings: Settings
) -> None:
    root = settings.recordings.root
    references = [
        db.run(
            partial(
                cases.register_complaint,
                settings=settings,
                actor=Actor.system("ivr"),
                caller_number=None,
                linkedid=f"r.{n}",
            )
        ).reference
        for n in range(3)
    ]
    batch = [
        # By reference, with the caller's message: the message is transcribed.
        tracked(
            "r.0",
            "0950000000",
            reference=references[0],
            recording=wav(root / "hotline-r.0.wav"),
            message=wav(root / "message-r.0.wav"),
        ),
        # By Linkedid, no message: the whole call is transcribed.
        tracked("r.1", "0950000001", reference="HL-x", recording=wav(root / "hotline-r.1.wav")),
        # A case but no recording at all: nothing to transcribe.
        tracked("r.2", "0950000002"),
    ]
    stored = db.run(lambda s: store_calls(s, settings, batch))
    assert [s.case_reference for s in stored] == references
    assert not any(s.abandoned for s in stored)
    with db.session() as s:
        jobs = s.exec(select(TranscriptionJob)).all()
        queued = {s.get(Recording, j.recording_id).path for j in jobs}  # type: ignore[union-attr]
        kinds = {r.path: r.kind for r in s.exec(select(Recording))}
        assert s.exec(select(Callback)).all() == []
    assert queued == {str(root / "message-r.0.wav"), str(root / "hotline-r.1.wav")}
    assert kinds[str(root / "message-r.0.wav")] == RecordingKind.MESSAGE.value
    assert actions(db).count("transcription.queue") == 2
    assert chain_is_intact(db)


def test_notes_finishes_and_a_resync_in_one_batch_keep_their_order(
    db: Database, settings: Settings
) -> None:
    store = CallStore(db, settings)
    later = START + timedelta(minutes=5)
    store.call_noted(tracked("n.1", "0960000001", ended=False))  # vanishes in the gap
    store.call_noted(tracked("n.2", "0960000002", ended=False))  # alive at the resync
    store.call_noted(tracked("n.3", "0960000003", ended=False))  # finished in this batch
    store.call_finished(tracked("n.3", "0960000003"))
    store.call_finished(tracked("n.3", "0960000003"))  # a replay
    store.calls_alive({"n.2"}, later)
    store.call_noted(tracked("n.4", "0960000004", ended=False))  # started after the snapshot
    store.start()  # everything queued is one batch
    store.stop()
    assert (store.stats.stored, store.stats.duplicates, store.stats.errors) == (1, 1, 0)
    with db.session() as s:
        calls = {c.linkedid: c for c in s.exec(select(Call))}
    assert calls["n.1"].ended_at == later
    assert calls["n.1"].hangup_cause_text == "ended while the listener was away"
    assert calls["n.2"].ended_at is None and calls["n.4"].ended_at is None
    assert calls["n.3"].ended_at == START + timedelta(seconds=31)
    assert chain_is_intact(db)


def test_recordings_are_read_before_the_write_transaction_begins(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading and hashing a batch's files must not hold the write lock the IVR needs."""
    connections_in_use: list[int] = []

    def reading(paths: Iterable[str]) -> dict[str, FileFacts | RecordingError]:
        connections_in_use.append(db.engine.pool.checkedout())  # type: ignore[attr-defined]
        return inspect_files(paths)

    monkeypatch.setattr(persist, "inspect_files", reading)
    present = wav(settings.recordings.root / "hotline-f.1.wav")
    store = CallStore(db, settings)
    store.call_finished(tracked("f.1", "0970000001", recording=present))
    store.start()
    store.stop()
    assert (store.stats.stored, store.stats.errors) == (1, 0)
    assert store.wait_until_stored(1, 0) and not store.wait_until_stored(2, 0.01)
    assert connections_in_use == [0]
    with db.session() as s:
        (recording,) = s.exec(select(Recording)).all()
    assert recording.sha256 == hashlib.sha256(Path(present).read_bytes()).hexdigest()


def test_a_recording_named_with_a_doubled_slash_is_not_recovered_as_another_call(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    settings.recordings.root = tmp_path
    path = wav(tmp_path / "hotline-1795.2.wav")
    # A dialplan that joins a directory ending in "/" to the file name.
    named = f"{tmp_path}//hotline-1795.2.wav"
    call = replace(tracked("1795.1", "0910000001", recording=named), uniqueid="1795.2")
    db.run(lambda s: store_calls(s, settings, [call]))
    long_ago = time.time() - 600
    os.utime(path, (long_ago, long_ago))
    reconcile = partial(persist.reconcile_recordings, settings=settings, live_uniqueids=set())
    assert db.run(reconcile) == []
    with db.session() as s:
        assert [c.linkedid for c in s.exec(select(Call))] == ["1795.1"]
        (recording,) = s.exec(select(Recording))
        assert recording.path == path and recording.sha256 is not None


@pytest.mark.parametrize(
    ("capture", "abandoned"),
    [("status", False), ("agent-answered", False), ("agent-unanswered", True), ("abandoned", True)],
)
def test_only_callers_who_were_not_served_are_abandoned_and_called_back(
    db: Database, settings: Settings, capture: str, abandoned: bool
) -> None:
    # Real Asterisk bytes (tests/fixtures/ami/outcome) through the tracker and the store.
    sink = CollectingSink()
    tracker = CallTracker(sink, TrackerRules.from_settings(settings.ami))
    replay((FIXTURES / "outcome" / f"{capture}.server.raw").read_bytes(), tracker)
    [stored] = db.run(lambda s: store_calls(s, settings, sink.calls))
    assert stored.abandoned is abandoned
    with db.session() as s:
        call = s.exec(select(Call)).one()
        callbacks = s.exec(select(Callback)).all()
    assert call.abandoned is abandoned
    assert [c.phone_number for c in callbacks] == (["0910000001"] if abandoned else [])
