"""Are the recordings still what was ingested? Re-hash every file and compare with the SHA-256
stored at ingest; report changed files, rows whose file is gone and files nobody ingested, each
with the recording and the case it belongs to."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.clock import ensure_aware
from casebook.db import Database
from casebook.models import Recording
from recordings.catalogue import owner_of
from recordings.ingest import RecordingRefused, confined_path, sha256_of
from recordings.settings import RecordingsConfig


@dataclass(frozen=True)
class Finding:
    path: str
    recording_id: int | None = None
    case_reference: str | None = None
    expected_sha256: str | None = None
    actual_sha256: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class IntegrityReport:
    checked: int
    changed: list[Finding] = field(default_factory=list)
    missing: list[Finding] = field(default_factory=list)
    unexpected: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not (self.changed or self.missing or self.unexpected)


@dataclass(frozen=True)
class _Expected:
    finding: Finding  # what to report should the file not match
    to_check: bool  # within --since


def require_reviewer(actor: Actor, action: str) -> None:
    if not (actor.is_system or actor.can("review_recordings")):
        raise audit.denial(
            actor, action, "recording", None, f"{actor.username} may not review recordings"
        )


def _catalogue(session: Session, actor: Actor, since: datetime | None) -> list[_Expected]:
    require_reviewer(actor, "recording.verify")
    rows = session.exec(
        select(Recording).where(col(Recording.deleted_at).is_(None)).order_by(col(Recording.id))
    )
    start = ensure_aware(since) if since is not None else None
    expected = []
    for recording in rows:
        in_range = start is None or recording.created_at >= start
        reference = owner_of(session, recording).reference if in_range else None
        finding = Finding(recording.path, recording.id, reference, recording.sha256)
        expected.append(_Expected(finding, in_range))
    return expected


def _check_one(finding: Finding, root: Path) -> tuple[str, Finding] | None:
    """("missing" | "changed", the finding) when the file does not match, else None. Only a
    file under ``root`` is read (a row naming anything else is reported, never opened)."""
    if finding.expected_sha256 is None:
        return "missing", replace(finding, note="missing or unreadable at ingest")
    try:
        actual = sha256_of(confined_path(root, finding.path))
    except RecordingRefused as exc:
        return "missing", replace(finding, note=str(exc))
    except FileNotFoundError:
        return "missing", replace(finding, note="file not found")
    except OSError as exc:
        return "missing", replace(finding, note=f"cannot read: {exc.strerror}")
    if actual != finding.expected_sha256:
        return "changed", replace(finding, actual_sha256=actual)
    return None


def _confined(root: Path, expected: list[_Expected]) -> list[str]:
    """The rows' paths that are files of ``root`` (others are reported by ``_check_one``)."""
    paths = []
    for item in expected:
        with contextlib.suppress(RecordingRefused):
            paths.append(confined_path(root, item.finding.path))
    return paths


def _check(expected: list[_Expected], root: Path) -> IntegrityReport:
    found: dict[str, list[Finding]] = {"changed": [], "missing": []}
    to_check = [item.finding for item in expected if item.to_check]
    for finding in to_check:
        problem = _check_one(finding, root)
        if problem is not None:
            found[problem[0]].append(problem[1])
    # Every row counts as known, also those outside --since: only their files are not re-hashed.
    known = {Path(path).resolve() for path in _confined(root, expected)}
    unexpected = [
        Finding(str(path), note="no recording row")
        for path in (sorted(root.rglob("*")) if root.is_dir() else [])
        if path.is_file() and path.resolve() not in known
    ]
    return IntegrityReport(len(to_check), found["changed"], found["missing"], unexpected)


def _summary(report: IntegrityReport) -> dict[str, Any]:
    return {
        "checked": report.checked,
        "changed": [f.recording_id for f in report.changed],
        "missing": [f.recording_id for f in report.missing],
        # Paths can be many and long; the first ones are enough to find the rest.
        "unexpected": [f.path for f in report.unexpected[:20]],
        "unexpected_count": len(report.unexpected),
    }


def verify_recordings(
    db: Database, settings: RecordingsConfig, actor: Actor, *, since: datetime | None = None
) -> IntegrityReport:
    """Three steps, so no transaction (on SQLite: the write lock) is held while files are read:
    the catalogue, the hashing, then the result in the audit log."""
    expected = db.run(lambda session: _catalogue(session, actor, since))
    report = _check(expected, settings.recordings.root)
    db.run(
        lambda session: audit.record(
            session, actor, "recording.verify", "recording", None, _summary(report)
        )
    )
    return report
