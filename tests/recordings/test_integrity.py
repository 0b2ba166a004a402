"""`qa verify`: a changed byte, a missing file and a file nobody ingested are each reported with
the recording and the case they belong to."""

from __future__ import annotations

from pathlib import Path

import pytest

from casebook.db import Database
from casebook.errors import AccessDenied
from hotline.app.config import Settings
from recordings.integrity import verify_recordings
from tests.conftest import Staff
from tests.recordings.helpers import audit_events, recorded_call, reference_of, write_wav


def flip_a_byte(path: Path, offset: int = 100) -> None:
    path.chmod(0o644)  # the tamperer's first step; read-only is no lock for the owner
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_intact_recordings_verify(db: Database, settings: Settings, staff: Staff) -> None:
    recorded_call(db, settings, "c1")
    report = verify_recordings(db, settings, staff.actor("qa"))
    assert report.intact and report.checked == 1


def test_a_changed_byte_a_missing_and_an_unexpected_file_are_reported_with_their_case(
    db: Database, settings: Settings, staff: Staff
) -> None:
    changed = recorded_call(db, settings, "c1")
    missing = recorded_call(db, settings, "c2", category="network")
    recorded_call(db, settings, "c3")
    flip_a_byte(Path(changed.path))
    Path(missing.path).unlink()
    write_wav(settings.recordings.root / "stray" / "planted.wav")

    report = verify_recordings(db, settings, staff.actor("qa"))

    assert not report.intact and report.checked == 3
    (found,) = report.changed
    assert (found.recording_id, found.case_reference) == (changed.id, reference_of(db, changed))
    assert found.expected_sha256 == changed.sha256 != found.actual_sha256
    (gone,) = report.missing
    assert (gone.recording_id, gone.case_reference) == (missing.id, reference_of(db, missing))
    assert [Path(f.path).name for f in report.unexpected] == ["planted.wav"]
    (event,) = audit_events(db, "recording.verify")
    assert event.detail["changed"] == [changed.id] and event.detail["missing"] == [missing.id]


def test_only_reviewers_verify_and_the_refusal_is_audited(
    db: Database, settings: Settings, staff: Staff
) -> None:
    with pytest.raises(AccessDenied, match="carer may not review recordings"):
        verify_recordings(db, settings, staff.actor("carer"))
    (event,) = audit_events(db, "recording.verify")
    assert not event.allowed
