"""Ingest of a call's recording: read-only, kept for the retention period, never a silent skip."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from casebook.db import Database
from casebook.models import Call, RecordingKind
from hotline.app.config import Settings
from recordings.ingest import IngestedRecording, store_call_recordings
from tests.recordings.helpers import (
    LISTENER,
    audit_events,
    recorded_call,
    stored_call,
    write_wav,
)


def test_an_ingested_call_recording_is_read_only_and_kept_for_the_retention_period(
    db: Database, settings: Settings
) -> None:
    recording = recorded_call(db, settings, "c1")
    assert stat.S_IMODE(Path(recording.path).stat().st_mode) == 0o444
    assert recording.sha256 is not None and recording.call_id is not None
    assert recording.case_id is not None
    assert recording.retained_until == recording.created_at + timedelta(days=365)
    (event,) = audit_events(db, "recording.ingest")
    assert event.detail["call"] == "c1" and "read_only" not in event.detail


def test_a_file_owned_by_another_user_is_ingested_and_the_chmod_refusal_reported(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: str, mode: int, *, follow_symlinks: bool = True) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    recording = recorded_call(db, settings, "c1")
    assert recording.sha256 is not None
    (event,) = audit_events(db, "recording.ingest")
    assert "not made read-only (owned by another user)" in event.detail["read_only"]


def test_a_missing_file_marks_the_call_and_a_later_ingest_clears_the_mark(
    db: Database, settings: Settings
) -> None:
    call = stored_call(db, "gone-1")
    path = settings.recordings.root / "gone-1.wav"

    def ingest(name: str) -> IngestedRecording:
        wanted = [(call, name, RecordingKind.CALL)]
        (ingested,) = db.run(lambda s: store_call_recordings(s, settings, LISTENER, wanted))
        assert ingested is not None
        return ingested

    first = ingest("gone-1.wav")
    assert first.sha256 is None and first.path == str(path)  # relative: under the root
    with db.session() as s:
        assert s.get(Call, call.id).recording_missing  # type: ignore[union-attr]
    (missing,) = audit_events(db, "recording.missing")
    assert missing.detail["call"] == "gone-1"
    assert "gone-1.wav: recording not found" in missing.detail["error"]
    write_wav(path)  # Asterisk's file arrives late (a shared folder catching up)
    again = ingest(str(path))
    assert again.id == first.id and again.sha256 is not None
    with db.session() as s:
        assert not s.get(Call, call.id).recording_missing  # type: ignore[union-attr]
