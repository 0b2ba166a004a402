"""Ingest a recording: who it belongs to, and the facts that later prove it unchanged
(SHA-256, size) and describe it (duration, sample rate, channels, format)."""

from __future__ import annotations

import hashlib
import logging
import wave
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
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


def _take_facts(recording: Recording) -> tuple[str | None, str | None]:
    """Fill in the file's facts; returns (error, read-only warning)."""
    path = Path(recording.path)
    try:
        facts = inspect_file(path)
    except RecordingError as exc:
        return str(exc), None
    recording.sha256 = facts.sha256
    recording.size_bytes = facts.size_bytes
    recording.format = facts.format
    recording.duration_seconds = facts.duration_seconds
    recording.sample_rate = facts.sample_rate
    recording.channels = facts.channels
    return None, make_read_only(path)


def _mark_call(session: Session, call_id: int) -> Call | None:
    """A call is marked while any of its recordings has no facts (missing or unreadable)."""
    call = session.get(Call, call_id)
    if call is not None:
        unread = select(Recording.id).where(
            Recording.call_id == call_id, col(Recording.sha256).is_(None)
        )
        call.recording_missing = session.exec(unread).first() is not None
        session.add(call)
    return call


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
    """Store the recording once per path (a second ingest links what the first did not know,
    and reads a file that was missing the first time). A missing or unreadable file is never
    skipped: the row keeps its path without a hash, its call is marked ``recording_missing``
    and the audit log says why. ``retention`` sets the date it may be deleted from."""
    recording = session.exec(select(Recording).where(Recording.path == path)).first()
    if recording is None:
        recording = Recording(path=path, kind=kind.value)
    error = read_only = None
    if recording.sha256 is None:
        error, read_only = _take_facts(recording)
    recording.call_id = recording.call_id or call_id
    recording.case_id = recording.case_id or case_id
    if retention is not None and recording.retained_until is None:
        recording.retained_until = recording.created_at + timedelta(days=retention.recordings_days)
    session.add(recording)
    session.flush()
    call = _mark_call(session, recording.call_id) if recording.call_id is not None else None
    linkedid = call.linkedid if call is not None else None
    if error is not None:
        log.error("recording %s: %s", recording.id, error)
        detail = {"path": path, "error": error, "call": linkedid}
        audit.record(session, actor, "recording.missing", "recording", recording.id, detail)
    if read_only is not None:
        log.warning("recording %s: %s", recording.id, read_only)
    detail = {"path": path, "sha256": recording.sha256, "call": linkedid}
    if read_only is not None:
        detail["read_only"] = read_only
    audit.record(session, actor, "recording.ingest", "recording", recording.id, detail)
    return recording


def resolve_path(settings: Settings, path: str) -> str:
    """Asterisk names MixMonitor files absolutely; a relative name is under recordings.root."""
    return str(Path(path) if Path(path).is_absolute() else settings.recordings.root / path)


def ingest_call_recording(
    session: Session,
    settings: Settings,
    actor: Actor,
    call: Call,
    path: str,
    *,
    kind: RecordingKind = RecordingKind.CALL,
) -> Recording:
    """The AMI listener's entry: the MixMonitor file of a stored call (``kind`` CALLBACK for a
    callback an agent placed), linked to the call and its case, kept for the retention period.
    Check ``call.recording_missing`` (or ``Recording.sha256 is None``) for a missing file."""
    assert call.id is not None  # a stored call
    return ingest_recording(
        session,
        actor,
        resolve_path(settings, path),
        kind=kind,
        call_id=call.id,
        case_id=call.case_id,
        retention=settings.retention,
    )
