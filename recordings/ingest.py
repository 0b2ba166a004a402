"""Ingest a recording: who it belongs to, and the facts that later prove it unchanged
(SHA-256, size) and describe it (duration, sample rate, channels, format)."""

from __future__ import annotations

import hashlib
import wave
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from casebook import audit
from casebook.access import Actor
from casebook.models import Recording, RecordingKind

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


def ingest_recording(
    session: Session,
    actor: Actor,
    path: str,
    *,
    kind: RecordingKind,
    call_id: int | None = None,
    case_id: int | None = None,
) -> Recording:
    """Store the recording once per path (a second ingest links what the first did not know)."""
    recording = session.exec(select(Recording).where(Recording.path == path)).first()
    if recording is None:
        recording = Recording(path=path, kind=kind.value)
        try:
            facts = inspect_file(Path(path))
        except RecordingError as exc:
            detail = {"path": path, "error": str(exc)}
            audit.record(session, actor, "recording.missing", "recording", None, detail)
        else:
            recording.sha256 = facts.sha256
            recording.size_bytes = facts.size_bytes
            recording.format = facts.format
            recording.duration_seconds = facts.duration_seconds
            recording.sample_rate = facts.sample_rate
            recording.channels = facts.channels
    recording.call_id = recording.call_id or call_id
    recording.case_id = recording.case_id or case_id
    session.add(recording)
    session.flush()
    audit.record(session, actor, "recording.ingest", "recording", recording.id, {"path": path})
    return recording
