"""Play and export: who may, the file proven unchanged first, every access and refusal audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from casebook import drafts
from casebook.db import Database
from casebook.errors import AccessDenied, CasebookError
from casebook.models import NOTE_TEXT, CaseStatus
from hotline.app.config import Settings
from recordings.listening import (
    PLAYER_ERROR_CHARS,
    TamperedRecording,
    copy_for_playing,
    export_recording,
    report_playback,
    verified_copy,
)
from tests.conftest import Staff
from tests.recordings.helpers import audit_events, recorded_call, reference_of


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where copies go: empty (the test database lives next to it)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def test_an_agent_hears_the_calls_of_their_own_cases(
    db: Database, settings: Settings, staff: Staff, folder: Path
) -> None:
    carer = staff.actor("carer")
    recording = recorded_call(db, settings, "c1", agent_id=carer.agent_id)
    copy = db.run(
        lambda s: copy_for_playing(
            s, carer, recording.id or 0, "callback prep", folder, root=settings.recordings.root
        )
    )
    assert copy.read_bytes() == Path(recording.path).read_bytes()
    # Sent, not heard: the server cannot know; the client says how playing went.
    (event,) = audit_events(db, "recording.sent")
    assert (event.actor, event.allowed, event.detail["why"]) == ("carer", True, "callback prep")
    assert event.detail["case"] == reference_of(db, recording)
    assert audit_events(db, "recording.played") == []


def test_an_agent_hears_the_draft_they_have_open_and_no_longer_once_it_is_given_back(
    db: Database, settings: Settings, staff: Staff, folder: Path
) -> None:
    carer = staff.actor("carer")
    recording = recorded_call(db, settings, "d1", status=CaseStatus.DRAFT)
    reference = reference_of(db, recording) or ""

    def play(s: Session) -> Path:
        root = settings.recordings.root
        return copy_for_playing(s, carer, recording.id or 0, "review", folder, root=root)

    db.run(lambda s: drafts.open_draft(s, settings, carer, reference))
    assert db.run(play).read_bytes() == Path(recording.path).read_bytes()
    db.run(lambda s: drafts.release_lease(s, carer, reference))
    with pytest.raises(AccessDenied, match="carer may not play"):
        db.run(play)


def test_an_agent_playing_another_agents_call_is_refused_and_audited(
    db: Database, settings: Settings, staff: Staff, folder: Path
) -> None:
    carer, biller = staff.actor("carer"), staff.actor("biller")
    recording = recorded_call(db, settings, "c1", agent_id=carer.agent_id)
    with pytest.raises(AccessDenied, match=f"biller may not play recording {recording.id}"):
        db.run(
            lambda s: copy_for_playing(
                s, biller, recording.id or 0, "curious", folder, root=settings.recordings.root
            )
        )
    (event,) = audit_events(db, "recording.play")
    assert (event.actor, event.allowed, event.object_id) == ("biller", False, str(recording.id))
    assert event.detail["why"] == "curious"
    assert list(folder.iterdir()) == []


def test_a_refusal_is_audited_whatever_reason_was_typed(
    db: Database, settings: Settings, staff: Staff, folder: Path
) -> None:
    """A refused listen with a reason over the audit's text limit is still refused as a
    refusal (not as a text refused) and on record, its reason cut with a visible mark."""
    carer, biller = staff.actor("carer"), staff.actor("biller")
    recording = recorded_call(db, settings, "c1", agent_id=carer.agent_id)
    typed = "ف" * (NOTE_TEXT + 500)
    with pytest.raises(AccessDenied, match=f"biller may not play recording {recording.id}"):
        db.run(
            lambda s: copy_for_playing(
                s, biller, recording.id or 0, typed, folder, root=settings.recordings.root
            )
        )
    (event,) = audit_events(db, "recording.play")
    assert (event.actor, event.allowed) == ("biller", False)
    assert event.detail["why"] == typed[: NOTE_TEXT - 1] + "…"


def test_agents_do_not_export_even_their_own_calls(
    db: Database, settings: Settings, staff: Staff, folder: Path
) -> None:
    carer = staff.actor("carer")
    recording = recorded_call(db, settings, "c1", agent_id=carer.agent_id)
    with pytest.raises(AccessDenied, match="may not export"):
        db.run(
            lambda s: export_recording(
                s, carer, recording.id or 0, folder, "keep", root=settings.recordings.root
            )
        )


def test_qa_exports_a_verified_private_copy_and_never_overwrites(
    db: Database, settings: Settings, staff: Staff, folder: Path
) -> None:
    qa = staff.actor("qa")
    recording = recorded_call(db, settings, "c1")
    target = db.run(
        lambda s: export_recording(
            s, qa, recording.id or 0, folder, "complaint", root=settings.recordings.root
        )
    )
    assert target == folder / "c1.wav"
    assert target.read_bytes() == Path(recording.path).read_bytes()
    assert target.stat().st_mode & 0o077 == 0
    (event,) = audit_events(db, "recording.export")
    assert event.detail["to"] == str(target) and event.detail["why"] == "complaint"
    with pytest.raises(CasebookError, match="exists: not overwritten"):
        db.run(
            lambda s: export_recording(
                s, qa, recording.id or 0, target, "again", root=settings.recordings.root
            )
        )


@pytest.mark.parametrize("action", ["play", "export"])
def test_a_tampered_file_is_refused_and_reported(
    db: Database, settings: Settings, staff: Staff, folder: Path, action: str
) -> None:
    qa = staff.actor("qa")
    recording = recorded_call(db, settings, "c1")
    path = Path(recording.path)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\x7f")
    with pytest.raises(TamperedRecording, match="no longer matches the SHA-256"):
        if action == "play":
            db.run(
                lambda s: copy_for_playing(
                    s, qa, recording.id or 0, "review", folder, root=settings.recordings.root
                )
            )
        else:
            db.run(
                lambda s: export_recording(
                    s, qa, recording.id or 0, folder, "review", root=settings.recordings.root
                )
            )
    assert list(folder.iterdir()) == []
    (event,) = audit_events(db, f"recording.{action}")
    assert not event.allowed and event.detail["expected"] == recording.sha256
    assert reference_of(db, recording) in event.detail["reason"]


def test_a_reason_is_required(db: Database, settings: Settings, staff: Staff, folder: Path) -> None:
    recording = recorded_call(db, settings, "c1")
    with pytest.raises(CasebookError, match="say why"):
        db.run(
            lambda s: copy_for_playing(
                s, staff.actor("qa"), recording.id or 0, " ", folder, root=settings.recordings.root
            )
        )


def test_a_verified_copy_for_the_server_to_send_is_audited_with_its_purpose(
    db: Database, settings: Settings, staff: Staff, folder: Path
) -> None:
    qa = staff.actor("qa")
    recording = recorded_call(db, settings, "c1")
    copy = db.run(
        lambda s: verified_copy(
            s,
            qa,
            recording.id or 0,
            "complaint file",
            folder,
            purpose="export",
            root=settings.recordings.root,
        )
    )
    assert copy.path == folder / "c1.wav"
    assert copy.path.read_bytes() == Path(recording.path).read_bytes()
    assert copy.sha256 == recording.sha256
    (event,) = audit_events(db, "recording.export")
    assert (event.actor, event.detail["why"], event.detail["to"]) == (
        "qa",
        "complaint file",
        "download",
    )
    carer = staff.actor("carer")
    with pytest.raises(AccessDenied):
        db.run(
            lambda s: verified_copy(
                s,
                carer,
                recording.id or 0,
                "x",
                folder,
                purpose="play",
                root=settings.recordings.root,
            )
        )


def test_the_clients_word_on_playing_is_logged_as_played_or_failed(
    db: Database, settings: Settings, staff: Staff
) -> None:
    carer, biller = staff.actor("carer"), staff.actor("biller")
    recording = recorded_call(db, settings, "c1", agent_id=carer.agent_id)
    rec = recording.id or 0
    db.run(lambda s: report_playback(s, carer, rec, "callback prep", played=True))
    alsa = (
        "ALSA lib confmisc.c:855:(parse_card) cannot find card '0'\n" * 40
        + "aplay: main:831: audio open error: No such file or directory"
    )
    db.run(lambda s: report_playback(s, carer, rec, "again", played=False, error=alsa))
    (played,) = audit_events(db, "recording.played")
    (failed,) = audit_events(db, "recording.play_failed")
    assert (played.actor, played.detail["why"]) == ("carer", "callback prep")
    assert failed.detail["why"] == "again" and failed.allowed
    assert len(failed.detail["error"]) <= PLAYER_ERROR_CHARS
    with pytest.raises(AccessDenied):
        db.run(lambda s: report_playback(s, biller, rec, "curious", played=True))
    assert len(audit_events(db, "recording.played")) == 1


def test_an_export_to_a_folder_that_does_not_exist_is_refused_before_anything_is_read(
    db: Database, settings: Settings, staff: Staff, folder: Path
) -> None:
    recording = recorded_call(db, settings, "c1")
    nowhere = folder / "no-such-folder" / "copy.wav"
    with pytest.raises(CasebookError, match=f"folder {nowhere.parent} does not exist") as refused:
        db.run(
            lambda s: export_recording(
                s,
                staff.actor("qa"),
                recording.id or 0,
                nowhere,
                "court",
                root=settings.recordings.root,
            )
        )
    assert not isinstance(refused.value, TamperedRecording)
    # Not the recording's fault: no integrity failure, no export on record.
    assert audit_events(db, "recording.export") == []
