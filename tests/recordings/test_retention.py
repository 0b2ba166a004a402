"""Retention deletes old recordings, never one an open case or a QA review holds; each
deletion is audited and a dry run deletes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from casebook.access import Actor
from casebook.db import Database
from casebook.errors import AccessDenied
from casebook.models import CaseStatus, Recording
from hotline.app.config import Settings
from recordings.integrity import verify_recordings
from recordings.retention import Expired, apply_retention
from recordings.scorecard import score_recording
from tests.conftest import Staff
from tests.recordings.helpers import NOW, audit_events, recorded_call
from tests.recordings.test_scorecard import all_scored

SCHEDULER = Actor.system("scheduler")
LONG_AGO = NOW - timedelta(days=400)


def retention(db: Database, settings: Settings, *, dry_run: bool) -> list[Expired]:
    return db.run(lambda s: apply_retention(s, settings, SCHEDULER, NOW, dry_run))


def test_only_old_recordings_that_nothing_holds_are_deleted_and_each_is_audited(
    db: Database, settings: Settings, staff: Staff
) -> None:
    closed = recorded_call(db, settings, "closed", status=CaseStatus.CLOSED, created=LONG_AGO)
    rejected = recorded_call(db, settings, "rejected", status=CaseStatus.REJECTED, created=LONG_AGO)
    abandoned = recorded_call(db, settings, "abandoned", abandoned=True, created=LONG_AGO)
    open_case = recorded_call(db, settings, "open", status=CaseStatus.ESCALATED, created=LONG_AGO)
    reviewed = recorded_call(db, settings, "reviewed", status=CaseStatus.CLOSED, created=LONG_AGO)
    young = recorded_call(db, settings, "young", status=CaseStatus.CLOSED, created=NOW)
    db.run(
        lambda s: score_recording(
            s, settings.qa, staff.actor("qa"), reviewed.id or 0, all_scored(2.0)
        )
    )
    gone = {closed.id, rejected.id, abandoned.id}

    preview = retention(db, settings, dry_run=True)
    assert {item.recording_id for item in preview} == gone
    assert all(Path(r.path).exists() for r in (closed, rejected, abandoned))
    assert audit_events(db, "recording.delete") == []

    deleted = retention(db, settings, dry_run=False)
    assert {item.recording_id for item in deleted if item.deleted} == gone
    for recording in (closed, rejected, abandoned):
        assert not Path(recording.path).exists()
    for recording in (open_case, reviewed, young):
        assert Path(recording.path).exists()
    events = audit_events(db, "recording.delete")
    assert {int(e.object_id or 0) for e in events} == gone
    assert all(e.detail["why"] == "retention" and e.detail["sha256"] for e in events)
    with db.session() as s:
        assert s.get(Recording, closed.id).deleted_at is not None  # type: ignore[union-attr]
    # A second run finds nothing; integrity checks ignore what retention removed.
    assert retention(db, settings, dry_run=False) == []
    assert verify_recordings(db, settings, staff.actor("qa")).intact


def test_only_admins_and_the_scheduler_apply_retention(
    db: Database, settings: Settings, staff: Staff
) -> None:
    with pytest.raises(AccessDenied, match="qa may not apply recording retention"):
        db.run(lambda s: apply_retention(s, settings, staff.actor("qa"), NOW, True))
    assert db.run(lambda s: apply_retention(s, settings, staff.actor("admin"), NOW, True)) == []
