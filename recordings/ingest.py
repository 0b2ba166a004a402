"""Ingest a recording: who it belongs to, and the facts that later prove it unchanged
(SHA-256, size) and describe it (duration, sample rate, channels, format)."""

from __future__ import annotations

import hashlib
import logging
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.db import chunked, insert_rows, with_defaults
from casebook.models import Call, Recording, RecordingKind
from hotline.config import RetentionSettings, Settings

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class RecordingError(Exception):
    """A recording that cannot be read; the message names the file and the reason."""


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    size_bytes: int
    format: str
    duration_seconds: float | None = None
    sample_rate: int | None = None
    channels: int | None = None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def inspect_file(path: Path) -> FileFacts:
    try:
        size = path.stat().st_size
        digest = sha256_of(path)
    except FileNotFoundError as exc:
        raise RecordingError(f"{path}: recording not found") from exc
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read recording ({exc.strerror})") from exc
    suffix = path.suffix.lower().lstrip(".") or "unknown"
    if suffix != "wav":
        return FileFacts(digest, size, suffix)
    try:
        with wave.open(str(path), "rb") as audio:
            rate, channels, frames = audio.getframerate(), audio.getnchannels(), audio.getnframes()
    except (wave.Error, EOFError):
        # Still stored with its hash: the file is evidence even if it does not play.
        return FileFacts(digest, size, "wav-unreadable")
    return FileFacts(digest, size, "wav", frames / rate if rate else None, rate, channels)


def make_read_only(path: Path) -> str | None:
    """chmod 0444, so a slip cannot overwrite evidence; None when done, else why not. Asterisk
    usually owns its files, and then only it (or root) may change their mode: the SHA-256
    stored at ingest still proves them unchanged, so this is reported, not fatal."""
    try:
        path.chmod(0o444)
    except PermissionError:
        return f"{path}: not made read-only (owned by another user)"
    except OSError as exc:
        return f"{path}: not made read-only ({exc.strerror})"
    return None


# What ingest may change on a recording row.
_STATE = (
    *("sha256", "size_bytes", "format", "duration_seconds", "sample_rate", "channels"),
    *("call_id", "case_id", "retained_until", "created_at"),
)


def _take_facts(row: dict[str, Any]) -> tuple[str | None, str | None]:
    """Fill in the file's facts; returns (error, read-only warning)."""
    path = Path(row["path"])
    try:
        facts = inspect_file(path)
    except RecordingError as exc:
        return str(exc), None
    row["sha256"] = facts.sha256
    row["size_bytes"] = facts.size_bytes
    row["format"] = facts.format
    row["duration_seconds"] = facts.duration_seconds
    row["sample_rate"] = facts.sample_rate
    row["channels"] = facts.channels
    return None, make_read_only(path)


def _mark_calls(session: Session, call_ids: Iterable[int]) -> dict[int, Call]:
    """A call is marked while any of its recordings has no facts (missing or unreadable)."""
    calls: dict[int, Call] = {}
    for keys in chunked(call_ids):
        calls |= {c.id or 0: c for c in session.exec(select(Call).where(col(Call.id).in_(keys)))}
        unread = select(Recording.call_id).where(
            col(Recording.call_id).in_(keys), col(Recording.sha256).is_(None)
        )
        marked = set(session.exec(unread))
        for call_id in keys:
            if call_id in calls:
                calls[call_id].recording_missing = call_id in marked
    return calls


@dataclass(frozen=True)
class WantedRecording:
    """A recording to ingest: its path, what it is, whose it is, and how long it is kept."""

    path: str
    kind: RecordingKind
    call_id: int | None = None
    case_id: int | None = None
    retention: RetentionSettings | None = None


def ingest_recordings(
    session: Session, actor: Actor, wanted: Sequence[WantedRecording]
) -> list[Recording]:
    """Store each recording once per path (a second ingest links what the first did not know,
    and reads a file that was missing the first time). A missing or unreadable file is never
    skipped: the row keeps its path without a hash, its call is marked ``recording_missing``
    and the audit log says why. ``retention`` sets the date it may be deleted from."""
    if not wanted:
        return []
    session.flush()  # anything added before is seen by the lookups below
    found: dict[str, Recording] = {}
    with session.no_autoflush:
        for keys in chunked(w.path for w in wanted):
            query = select(Recording).where(col(Recording.path).in_(keys))
            found |= {recording.path: recording for recording in session.exec(query)}
    # Each path's row as ingest leaves it: those already stored are updated, new ones are
    # inserted in one statement (with the model's defaults, as ``Recording(...)`` would have).
    rows = {path: {"path": path} | {f: getattr(r, f) for f in _STATE} for path, r in found.items()}
    new: list[dict[str, Any]] = []
    outcomes: list[tuple[str, str | None, str | None]] = []
    for item in wanted:
        row = rows.get(item.path)
        if row is None:
            row = rows[item.path] = with_defaults(
                Recording, {"path": item.path, "kind": item.kind.value}
            )
            new.append(row)
        error = read_only = None
        if row["sha256"] is None:
            error, read_only = _take_facts(row)
        row["call_id"] = row["call_id"] or item.call_id
        row["case_id"] = row["case_id"] or item.case_id
        if item.retention is not None and row["retained_until"] is None:
            days = item.retention.recordings_days
            row["retained_until"] = row["created_at"] + timedelta(days=days)
        outcomes.append((item.path, error, read_only))
    for path, recording in found.items():
        for name in _STATE:
            if getattr(recording, name) != rows[path][name]:
                setattr(recording, name, rows[path][name])
    insert_rows(session, Recording, new)
    for keys in chunked(row["path"] for row in new):
        query = select(Recording).where(col(Recording.path).in_(keys))
        found |= {recording.path: recording for recording in session.exec(query)}
    session.flush()
    recordings = [(found[path], error, read_only) for path, error, read_only in outcomes]
    with session.no_autoflush:
        calls = _mark_calls(session, (r.call_id for r, _, _ in recordings if r.call_id is not None))
    entries: list[audit.Entry] = []
    for recording, error, read_only in recordings:
        call = calls.get(recording.call_id) if recording.call_id is not None else None
        linkedid = call.linkedid if call is not None else None
        if error is not None:
            log.error("recording %s: %s", recording.id, error)
            detail = {"path": recording.path, "error": error, "call": linkedid}
            entries.append(("recording.missing", "recording", recording.id, detail))
        if read_only is not None:
            log.warning("recording %s: %s", recording.id, read_only)
        detail = {"path": recording.path, "sha256": recording.sha256, "call": linkedid}
        if read_only is not None:
            detail["read_only"] = read_only
        entries.append(("recording.ingest", "recording", recording.id, detail))
    audit.record_many(session, actor, entries)
    return [recording for recording, _, _ in recordings]


def ingest_recording(
    session: Session,
    actor: Actor,
    path: str,
    *,
    kind: RecordingKind,
    call_id: int | None = None,
    case_id: int | None = None,
    retention: RetentionSettings | None = None,
) -> Recording:
    """One recording: see ``ingest_recordings``."""
    wanted = WantedRecording(path, kind, call_id=call_id, case_id=case_id, retention=retention)
    return ingest_recordings(session, actor, [wanted])[0]


def resolve_path(settings: Settings, path: str) -> str:
    """Asterisk names MixMonitor files absolutely; a relative name is under recordings.root."""
    return str(Path(path) if Path(path).is_absolute() else settings.recordings.root / path)


def ingest_call_recordings(
    session: Session,
    settings: Settings,
    actor: Actor,
    wanted: Sequence[tuple[Call, str, RecordingKind]],
) -> list[Recording]:
    """The AMI listener's entry: MixMonitor files of stored calls (``kind`` CALLBACK for a
    callback an agent placed, MESSAGE for the caller's Record()ed complaint), each linked to
    its call and the call's case, kept for the retention period. Check
    ``call.recording_missing`` (or ``Recording.sha256 is None``) for a missing file."""
    items = []
    for call, path, kind in wanted:
        assert call.id is not None  # a stored call
        items.append(
            WantedRecording(
                resolve_path(settings, path),
                kind,
                call_id=call.id,
                case_id=call.case_id,
                retention=settings.retention,
            )
        )
    return ingest_recordings(session, actor, items)


def ingest_call_recording(
    session: Session,
    settings: Settings,
    actor: Actor,
    call: Call,
    path: str,
    *,
    kind: RecordingKind = RecordingKind.CALL,
) -> Recording:
    """One call's recording: see ``ingest_call_recordings``."""
    return ingest_call_recordings(session, settings, actor, [(call, path, kind)])[0]
