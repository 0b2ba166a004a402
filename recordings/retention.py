"""Retention: a recording past its retention date is deleted, unless a case still open or a
QA review holds it. The row stays (with its hash) as the record of what existed, marked
``deleted_at``; every deletion is audited. The scheduler runs ``apply_retention``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.clock import ensure_aware
from casebook.models import CaseStatus, QAReview, Recording
from recordings.catalogue import Owner, owner_of
from recordings.ingest import RecordingRefused, confined_path
from recordings.settings import RecordingsConfig

FINAL = (CaseStatus.CLOSED.value, CaseStatus.REJECTED.value)


@dataclass(frozen=True)
class Expired:
    recording_id: int
    path: str
    due: datetime
    case_reference: str | None
    deleted: bool
    error: str | None = None


def _due(recording: Recording, days: int) -> datetime:
    # Rows ingested without a retention date (before it was set at ingest) age from creation.
    return recording.retained_until or recording.created_at + timedelta(days=days)


def _held(session: Session, recording: Recording, owner: Owner) -> bool:
    if owner.case is not None and owner.case.status not in FINAL:
        return True
    review = select(QAReview.id).where(QAReview.recording_id == recording.id)
    return session.exec(review).first() is not None


def _deletable(root: Path, path: str) -> str | None:
    """None for a file of recordings.root, else why it is never deleted (nor its row marked)."""
    try:
        confined_path(root, path)
    except RecordingRefused as exc:
        return f"{exc}: not deleted"
    return None


def _delete_file(root: Path, path: str) -> str | None:
    """None when the file is gone (now or before), else why it stays. Only a file under
    ``root``: a symlink is removed itself, never what it points to."""
    refused = _deletable(root, path)
    if refused is not None:
        return refused
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as exc:
        return f"{path}: not deleted ({exc.strerror})"
    return None


def apply_retention(
    session: Session, settings: RecordingsConfig, actor: Actor, now: datetime, dry_run: bool
) -> list[Expired]:
    """What is past retention and not held; deleted (and audited one by one) unless
    ``dry_run``. A file that cannot be deleted is reported and its row left as it was, so the
    next run tries again; a run repeated after a failure deletes nothing twice."""
    if not (actor.is_system or actor.can("manage_recordings")):
        raise audit.denial(
            actor,
            "recording.retention",
            "recording",
            None,
            f"{actor.username} may not apply recording retention",
        )
    now = ensure_aware(now)
    days = settings.retention.recordings_days
    query = (
        select(Recording)
        .where(
            col(Recording.deleted_at).is_(None),
            or_(
                col(Recording.retained_until) <= now,
                and_(
                    col(Recording.retained_until).is_(None),
                    col(Recording.created_at) <= now - timedelta(days=days),
                ),
            ),
        )
        .order_by(col(Recording.id))
        # Two runs at once (the scheduler's and an admin's) each delete and audit a recording
        # once: the second passes over what the first holds (casebook.concurrency).
        .with_for_update(skip_locked=True)
    )
    expired: list[Expired] = []
    for recording in session.exec(query).all():
        assert recording.id is not None  # loaded rows
        owner = owner_of(session, recording)
        if _held(session, recording, owner):
            continue
        due = _due(recording, days)
        if dry_run:
            refused = _deletable(settings.recordings.root, recording.path)
            expired.append(
                Expired(recording.id, recording.path, due, owner.reference, False, refused)
            )
            continue
        error = _delete_file(settings.recordings.root, recording.path)
        if error is None:
            recording.deleted_at = now
            session.add(recording)
            detail = {
                "path": recording.path,
                "sha256": recording.sha256,
                "case": owner.reference,
                "due": due.isoformat(),
                "why": "retention",
            }
            audit.record(session, actor, "recording.delete", "recording", recording.id, detail)
        expired.append(
            Expired(recording.id, recording.path, due, owner.reference, error is None, error)
        )
    if dry_run:
        listed = {"dry_run": True, "due": [item.recording_id for item in expired]}
        audit.record(session, actor, "recording.retention", "recording", None, listed)
    return expired
