"""Recordings are confined to recordings.root: a path that leads anywhere else (``..``, an
absolute path elsewhere, a symlink or a symlinked folder inside the root pointing out, a NUL
byte, an over-long name) is refused and audited at every entry point, and the file it names
is never hashed, made read-only, exported or deleted."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from casebook import cases
from casebook.access import Actor
from casebook.db import Database
from casebook.models import Call, Recording, RecordingKind
from hotline.app.config import Settings
from hotline.app.persist import CallStore
from recordings.ingest import (
    RecordingRefused,
    confined_path,
    ingest_recording,
    inspect_files,
    resolve_path,
    store_call_recordings,
)
from recordings.integrity import verify_recordings
from recordings.listening import TamperedRecording, copy_for_playing, export_recording
from recordings.retention import Expired, apply_retention
from tests.conftest import Staff
from tests.hotline.test_store_batches import tracked
from tests.recordings.helpers import LISTENER, NOW, audit_events, stored_call, write_wav

FORMS = ["dotdot", "relative-dotdot", "absolute", "symlink", "symlinked-folder", "nul", "long"]


@dataclass(frozen=True)
class Hostile:
    given: str  # the path as the PBX (or an old row) names it
    target: Path  # the file outside the root it would reach, when it reaches one


def hostile(settings: Settings, tmp_path: Path, form: str) -> Hostile:
    root = settings.recordings.root
    root.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    secret = outside / "secret.wav"
    write_wav(secret)
    secret.chmod(0o600)
    given = {
        "dotdot": f"{root}/../outside/secret.wav",
        "relative-dotdot": "../outside/secret.wav",
        "absolute": str(secret),
        "symlink": str(root / "link.wav"),
        "symlinked-folder": str(root / "folder" / "secret.wav"),
        "nul": f"{root}/secret\0.wav",
        "long": f"{root}/{'x' * 300}.wav",
    }[form]
    if form == "symlink":
        (root / "link.wav").symlink_to(secret)
    if form == "symlinked-folder":
        (root / "folder").symlink_to(outside, target_is_directory=True)
    return Hostile(given, secret)


def untouched(target: Path) -> bool:
    return target.exists() and stat.S_IMODE(target.stat().st_mode) == 0o600


def recording_rows(db: Database) -> list[Recording]:
    with db.session() as s:
        return list(s.exec(select(Recording)))


@pytest.mark.parametrize("form", FORMS)
def test_the_one_rule_refuses_each_hostile_form(
    settings: Settings, tmp_path: Path, form: str
) -> None:
    bad = hostile(settings, tmp_path, form)
    with pytest.raises(RecordingRefused, match="refused"):
        confined_path(settings.recordings.root, bad.given)


def test_names_inside_the_root_are_accepted_and_spelled_plainly(settings: Settings) -> None:
    root = settings.recordings.root
    root.mkdir(parents=True)
    (root / "day").mkdir()
    assert confined_path(root, "day//a.wav") == str(root / "day" / "a.wav")
    assert confined_path(root, f"{root}/day/../b.wav") == str(root / "b.wav")
    # The root itself may be reached through a symlink (Asterisk is given the real path).
    linked = root.parent / "linked-root"
    linked.symlink_to(root, target_is_directory=True)
    assert confined_path(linked, f"{root}/c.wav") == str(root / "c.wav")


def refused_as_given(db: Database, given: str) -> None:
    (event,) = audit_events(db, "recording.refused")
    assert event.detail["path"] == given
    assert "refused" in event.detail["error"]


@pytest.mark.parametrize("form", FORMS)
def test_the_listener_refuses_and_audits_and_still_stores_the_call(
    db: Database, settings: Settings, tmp_path: Path, form: str
) -> None:
    bad = hostile(settings, tmp_path, form)
    call = stored_call(db, "c-1")
    # As the listener does it: the files are read off the write path, then stored.
    known = inspect_files([resolve_path(settings, bad.given)])
    wanted = [(call, bad.given, RecordingKind.CALL)]
    ingested = db.run(lambda s: store_call_recordings(s, settings, LISTENER, wanted, known))
    assert ingested == [None]
    assert untouched(bad.target)  # not made read-only
    assert recording_rows(db) == []
    refused_as_given(db, bad.given)
    with db.session() as s:
        kept = s.get(Call, call.id)
        assert kept is not None and kept.recording_missing


@pytest.mark.parametrize("form", FORMS)
def test_the_single_ingest_of_the_ivr_and_the_dialer_refuses_too(
    db: Database, settings: Settings, tmp_path: Path, form: str
) -> None:
    bad = hostile(settings, tmp_path, form)
    ingested = db.run(
        lambda s: ingest_recording(
            s, LISTENER, bad.given, kind=RecordingKind.MESSAGE, root=settings.recordings.root
        )
    )
    assert ingested is None
    assert untouched(bad.target)
    assert recording_rows(db) == []
    refused_as_given(db, bad.given)


# Rows stored before paths were confined (or by hand) still name the files outside.
ROW_FORMS = [f for f in FORMS if f != "relative-dotdot"]


def old_row(db: Database, settings: Settings, tmp_path: Path, form: str) -> tuple[Recording, Path]:
    if form == "nul" and db.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL stores no NUL in text: no such row can exist there")
    bad = hostile(settings, tmp_path, form)
    recording = Recording(
        path=bad.given,
        kind=RecordingKind.CALL.value,
        sha256=hashlib.sha256(bad.target.read_bytes()).hexdigest(),
        created_at=NOW - timedelta(days=400),
        retained_until=NOW - timedelta(days=30),
    )

    def work(s: Session) -> Recording:
        # By hand, as such rows were written: the ORM's checks (casebook.limits) now refuse
        # a NUL in a path on SQLite too.
        values = recording.model_dump(exclude={"id"})
        table = Recording.__table__  # type: ignore[attr-defined]
        inserted = s.connection().execute(table.insert().values(**values))
        assert inserted.inserted_primary_key is not None
        stored = s.get(Recording, inserted.inserted_primary_key[0])
        assert stored is not None
        return stored

    return db.run(work), bad.target


@pytest.mark.parametrize("form", ROW_FORMS)
def test_verify_reports_a_path_outside_the_root_and_never_reads_it(
    db: Database, settings: Settings, tmp_path: Path, form: str
) -> None:
    # The row's hash is the outside file's: read, it would pass as intact.
    recording, _ = old_row(db, settings, tmp_path, form)
    report = verify_recordings(db, settings, Actor.system("qa"))
    assert [f.recording_id for f in report.missing] == [recording.id]
    assert "refused" in (report.missing[0].note or "")


@pytest.mark.parametrize("action", ["play", "export"])
@pytest.mark.parametrize("form", ROW_FORMS)
def test_play_and_export_refuse_a_path_outside_the_root(
    db: Database,
    settings: Settings,
    staff: Staff,
    tmp_path: Path,
    form: str,
    action: str,
) -> None:
    recording, _ = old_row(db, settings, tmp_path, form)
    folder = tmp_path / "out"
    folder.mkdir()
    qa, root = staff.actor("qa"), settings.recordings.root
    with pytest.raises(TamperedRecording, match="refused"):
        if action == "play":
            db.run(lambda s: copy_for_playing(s, qa, recording.id or 0, "r", folder, root=root))
        else:
            db.run(lambda s: export_recording(s, qa, recording.id or 0, folder, "r", root=root))
    assert list(folder.iterdir()) == []
    (event,) = audit_events(db, f"recording.{action}")
    assert event.allowed is False and event.detail["path"] == recording.path


@pytest.mark.parametrize("form", ROW_FORMS)
def test_retention_never_deletes_outside_the_root_nor_lists_it_as_deletable(
    db: Database, settings: Settings, tmp_path: Path, form: str
) -> None:
    recording, target = old_row(db, settings, tmp_path, form)
    link = settings.recordings.root / "link.wav"
    scheduler = Actor.system("scheduler")
    for dry_run in (True, False):

        def run(s: Session, dry: bool = dry_run) -> list[Expired]:
            return apply_retention(s, settings, scheduler, NOW, dry)

        (item,) = db.run(run)
        assert not item.deleted and "refused" in (item.error or "")
    assert target.exists() and (form != "symlink" or link.is_symlink())
    with db.session() as s:
        kept = s.get(Recording, recording.id)
        assert kept is not None and kept.deleted_at is None
    assert audit_events(db, "recording.delete") == []


def test_the_listener_stores_a_hostile_batch_whole(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Through the listener's writer (the files read off the write path, then one batch):
    hostile recording names and caller numbers beside a good call lose nothing."""
    bad = hostile(settings, tmp_path, "symlinked-folder")
    good = settings.recordings.root / "hotline-g.1.wav"
    write_wav(good)
    (settings.recordings.root / "link.wav").symlink_to(bad.target)
    registered = db.run(
        lambda s: cases.register_complaint(
            s, settings, LISTENER, caller_number="0910000001", uniqueid="h.1", linkedid="h.1"
        )
    )
    store = CallStore(db, settings)
    store.call_finished(tracked("g.1", "0910000002", recording=str(good)))
    hostile_call = tracked(
        "h.1",
        "0912&Local/900@premium",
        recording="../../config.yaml",
        message=str(settings.recordings.root / "link.wav"),
    )
    store.call_finished(replace(hostile_call, case_reference=registered.reference))
    store.call_finished(tracked("x.1", "9" * 10240, recording=bad.given))
    store.start()
    store.stop()
    assert (store.stats.stored, store.stats.errors) == (3, 0)
    assert untouched(bad.target)
    with db.session() as s:
        stored = {c.linkedid: c for c in s.exec(select(Call))}
        assert [r.path for r in s.exec(select(Recording))] == [str(good)]
    assert not stored["g.1"].recording_missing
    assert stored["h.1"].recording_missing and stored["h.1"].case_id == registered.id
    assert stored["x.1"].recording_missing and stored["x.1"].caller_number is None
    refused = [e.detail["path"] for e in audit_events(db, "recording.refused")]
    assert sorted(refused) == sorted(
        ["../../config.yaml", str(settings.recordings.root / "link.wav"), bad.given]
    )
