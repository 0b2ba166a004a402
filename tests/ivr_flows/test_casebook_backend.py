"""The IVR on the real casebook: what one phoned-in complaint leaves in the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from casebook.db import Database
from casebook.models import (
    AuditEvent,
    Case,
    DraftState,
    Recording,
    RecordingKind,
    TranscriptionJob,
)
from hotline.app.config import Settings
from ivr_flows.casebook_backend import CasebookBackend
from ivr_flows.engine import leave_message, message_file
from ivr_flows.server import AgiServer
from tests.ivr_flows.fake_asterisk import Caller, place_call


@pytest.fixture
def casebook_server(db: Database, settings: Settings) -> AgiServer:
    settings.agi.command_timeout = 10.0
    return AgiServer(settings, CasebookBackend(db, settings), port=0)


def test_a_phoned_complaint_is_a_draft_with_its_message_queued(
    casebook_server: AgiServer, db: Database, settings: Settings
) -> None:
    with casebook_server:
        log = place_call(casebook_server.address, Caller(keys=["1", "1"]))
    with db.session() as s:
        case = s.exec(select(Case)).one()
        recording = s.exec(select(Recording)).one()
        job = s.exec(select(TranscriptionJob)).one()
        audit = [e.action for e in s.exec(select(AuditEvent).order_by(col(AuditEvent.id)))]
    assert (case.status, case.category, case.draft_state) == (
        "draft",
        "billing",
        DraftState.TRANSCRIBING,
    )
    assert (case.call_uniqueid, case.call_linkedid) == ("1763800000.101", "1763800000.100")
    assert log.said_digits() == [case.reference, case.reference]
    assert recording.kind == RecordingKind.MESSAGE and recording.case_id == case.id
    assert recording.sha256 is not None and recording.sample_rate == 8000
    assert job.recording_id == recording.id
    assert audit == ["case.register", "recording.ingest", "transcription.queue"]


def test_status_lookups_by_phone_are_audited(casebook_server: AgiServer, db: Database) -> None:
    with casebook_server:
        place_call(casebook_server.address, Caller(keys=["1", "1"]))
        with db.session() as s:
            reference = s.exec(select(Case)).one().reference or ""
        stranger = Caller(uniqueid="2.1", callerid="0920000000", keys=["2", reference, ""])
        place_call(casebook_server.address, stranger)
    with db.session() as s:
        lookups = s.exec(select(AuditEvent).where(AuditEvent.action == "case.status_lookup")).all()
    assert lookups and all(not event.allowed for event in lookups)
    assert all(event.detail["caller"] == "0920000000" for event in lookups)


def test_a_message_that_is_a_symlink_out_of_the_root_is_refused_and_the_complaint_kept(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"not the hotline's")
    outside.chmod(0o600)
    settings.recordings.root.mkdir(parents=True, exist_ok=True)
    message = settings.recordings.root / "message-1.2.wav"
    message.symlink_to(outside)
    registered = CasebookBackend(db, settings).register_complaint(
        caller_number="0910000001",
        uniqueid="1.2",
        linkedid="1.1",
        message_path=str(message),
        menu_choices=["main_menu:1"],
        category="billing",
    )
    with db.session() as s:
        case = s.exec(select(Case)).one()
        assert s.exec(select(Recording)).all() == []
        assert s.exec(select(TranscriptionJob)).all() == []
        refused = s.exec(select(AuditEvent).where(AuditEvent.action == "recording.refused")).one()
    assert case.reference == registered.reference
    assert refused.detail["path"] == str(message)
    assert outside.stat().st_mode & 0o777 == 0o600


def test_a_message_left_without_a_call_is_where_the_ivr_records_it_and_queued(
    db: Database, settings: Settings
) -> None:
    clip = Path(__file__).resolve().parents[1] / "data" / "arabic" / "ar02.wav"
    backend = CasebookBackend(db, settings)
    root = settings.recordings.root
    first = leave_message(backend, root, clip, uniqueid="1.2", caller_number="0910000001")
    wav = message_file(root, "1.2")
    assert wav.read_bytes() == clip.read_bytes() and wav.name == "message-1.2.wav"
    # Left again from where it lies (a message recorded in place): nothing copied, nor doubled.
    again = leave_message(backend, root, wav, uniqueid="1.2", caller_number="0910000001")
    assert (first.created, again.created, again.reference) == (True, False, first.reference)
    with db.session() as s:
        case = s.exec(select(Case)).one()
        recording = s.exec(select(Recording)).one()
        job = s.exec(select(TranscriptionJob)).one()
    assert (case.call_uniqueid, case.draft_state) == ("1.2", DraftState.TRANSCRIBING)
    assert recording.path == str(wav) and recording.kind == RecordingKind.MESSAGE
    assert job.recording_id == recording.id
