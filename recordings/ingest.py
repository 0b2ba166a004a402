"""Ingest a recording: who it belongs to, and the facts that later prove it unchanged
(SHA-256, size) and describe it (duration, sample rate, channels, format)."""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Table
from sqlmodel import Session

from casebook import audit
from casebook.access import Actor
from casebook.batch import chunked, execute_many, ids_by, with_defaults
from casebook.models import Call, Recording, RecordingKind, WithCase
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


def _read_hashed(path: str | os.PathLike[str]) -> tuple[str, int, bytes]:
    """SHA-256 and size of a file, and its first block (where a WAV keeps its header): one
    read of the file for all three. Unbuffered: it reads in blocks of its own, so a buffer
    would only add a copy, on hundreds of files a minute at the listener's peak."""
    digest = hashlib.sha256()
    size, head = 0, b""
    with open(path, "rb", buffering=0) as stream:
        while block := stream.read(_CHUNK):
            head = head or block
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size, head


def sha256_of(path: str | os.PathLike[str]) -> str:
    return _read_hashed(path)[0]


def wav_header(head: bytes, size: int) -> tuple[float, int, int] | None:
    """(duration in seconds, sample rate, channels) from the start of a RIFF/WAVE file of
    ``size`` bytes, or None when it is not a readable WAV. Any audio format (PCM, mu-law,
    A-law, GSM): the duration comes from the byte rate, and a data chunk that claims more
    than the file holds (a recording cut off) counts what is there."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset, layout = 12, None
    while offset + 8 <= len(head):
        name, length = (
            head[offset : offset + 4],
            int.from_bytes(head[offset + 4 : offset + 8], "little"),
        )
        body = offset + 8
        if name == b"fmt " and length >= 16 and body + 16 <= len(head):
            _, channels, rate, byte_rate = struct.unpack_from("<HHII", head, body)
            layout = (channels, rate, byte_rate)
        elif name == b"data":
            if layout is None or 0 in layout:
                return None
            channels, rate, byte_rate = layout
            return min(length, size - body) / byte_rate, rate, channels
        offset = body + length + (length & 1)  # chunks are padded to an even length
    return None


def inspect_file(path: str | os.PathLike[str]) -> FileFacts:
    try:
        digest, size, head = _read_hashed(path)
    except FileNotFoundError as exc:
        raise RecordingError(f"{path}: recording not found") from exc
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read recording ({exc.strerror})") from exc
    except ValueError as exc:  # a name no file can have (a NUL byte from a garbled channel)
        raise RecordingError(f"{str(path)!r}: not a file name ({exc})") from exc
    suffix = os.path.splitext(path)[1].lower().lstrip(".") or "unknown"
    if suffix != "wav":
        return FileFacts(digest, size, suffix)
    header = wav_header(head, size)
    if header is None:
        # Still stored with its hash: the file is evidence even if it does not play.
        return FileFacts(digest, size, "wav-unreadable")
    duration, rate, channels = header
    return FileFacts(digest, size, "wav", duration, rate, channels)


def make_read_only(path: str) -> str | None:
    """chmod 0444, so a slip cannot overwrite evidence; None when done, else why not. Asterisk
    usually owns its files, and then only it (or root) may change their mode: the SHA-256
    stored at ingest still proves them unchanged, so this is reported, not fatal."""
    try:
        os.chmod(path, 0o444)
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


def _take_facts(row: dict[str, Any], known: FileFacts | RecordingError | None) -> str | None:
    """Fill in the file's facts (``known``: read before, off the write path); returns why the
    file has none, or None."""
    facts = known or _inspect(row["path"])
    if isinstance(facts, RecordingError):
        return str(facts)
    row["sha256"] = facts.sha256
    row["size_bytes"] = facts.size_bytes
    row["format"] = facts.format
    row["duration_seconds"] = facts.duration_seconds
    row["sample_rate"] = facts.sample_rate
    row["channels"] = facts.channels
    return None


def _inspect(path: str) -> FileFacts | RecordingError:
    try:
        return inspect_file(path)
    except RecordingError as exc:
        return exc


def inspect_files(paths: Iterable[str]) -> dict[str, FileFacts | RecordingError]:
    """Each file's facts or why it has none: what ``store_recordings`` takes as ``known``."""
    return {path: _inspect(path) for path in paths}


_RECORDINGS: Table = Recording.__table__  # type: ignore[attr-defined]
_CALLS: Table = Call.__table__  # type: ignore[attr-defined]
_INSERT_RECORDING = _RECORDINGS.insert()
_UPDATE_RECORDING = _RECORDINGS.update().where(_RECORDINGS.c.id == sa.bindparam("recording_key"))
_MARK_CALL = _CALLS.update().where(_CALLS.c.id == sa.bindparam("call_key"))


def _mark_calls(connection: Connection, call_ids: Iterable[int]) -> dict[int, str]:
    """A call is marked while any of its recordings has no facts (missing or unreadable).
    Returns each call's Linkedid, for the audit log."""
    calls, recordings = _CALLS.c, _RECORDINGS.c
    linkedids: dict[int, str] = {}
    for keys in chunked(call_ids):
        unread = sa.select(recordings.call_id).where(
            recordings.call_id.in_(keys), recordings.sha256.is_(None)
        )
        marked = set(connection.execute(unread).scalars())
        query = sa.select(calls.id, calls.linkedid, calls.recording_missing)
        changed = []
        for call in connection.execute(query.where(calls.id.in_(keys))):
            linkedids[call.id] = call.linkedid
            if call.recording_missing != (call.id in marked):
                changed.append({"call_key": call.id, "recording_missing": call.id in marked})
        execute_many(connection, _MARK_CALL, changed)
    return linkedids


@dataclass(frozen=True)
class WantedRecording:
    """A recording to ingest: its path, what it is, whose it is, and how long it is kept."""

    path: str
    kind: RecordingKind
    call_id: int | None = None
    case_id: int | None = None
    retention: RetentionSettings | None = None


@dataclass(frozen=True)
class IngestedRecording:
    """A recording as ingest left it: whose it is and its hash (the row holds the rest)."""

    id: int
    path: str
    kind: str
    call_id: int | None
    case_id: int | None
    sha256: str | None
    # The Linkedid of its call, for the audit log.
    call_linkedid: str | None = None
    # Why the file could not be made read-only, when it could not (a warning, not an error).
    read_only_warning: str | None = None

    def audit_detail(self) -> dict[str, Any]:
        detail = {"id": self.id, "kind": self.kind, "path": self.path, "sha256": self.sha256}
        detail["call"] = self.call_linkedid
        if self.read_only_warning is not None:
            detail["read_only"] = self.read_only_warning
        return detail


def _stored_rows(connection: Connection, paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    columns = _RECORDINGS.c
    found: dict[str, dict[str, Any]] = {}
    for keys in chunked(paths):
        query = sa.select(columns.id, columns.path, columns.kind, *(columns[n] for n in _STATE))
        rows = connection.execute(query.where(columns.path.in_(keys))).mappings()
        found |= {row["path"]: dict(row) for row in rows}
    return found


def store_recordings(
    session: Session,
    actor: Actor,
    wanted: Sequence[WantedRecording],
    known: Mapping[str, FileFacts | RecordingError] | None = None,
) -> list[IngestedRecording]:
    """Store each recording once per path (a second ingest links what the first did not know,
    and reads a file that was missing the first time). A missing or unreadable file is never
    skipped: the row keeps its path without a hash, its call is marked ``recording_missing``
    and the audit log says why at once. ``retention`` sets the date it may be deleted from.
    ``known``: facts of files read before (``inspect_files``), by path; others are read here.
    The ingest itself is for the caller to audit (``ingest_recordings``, or the listener with
    its call)."""
    if not wanted:
        return []
    session.flush()  # anything added before is seen by the lookups below
    connection = session.connection()
    # Each path's row as ingest leaves it: those already stored are updated where ingest
    # changed them, new ones are inserted in one statement (with the model's defaults).
    rows = _stored_rows(connection, (w.path for w in wanted))
    stored = {path: dict(row) for path, row in rows.items()}
    new: list[dict[str, Any]] = []
    errors: dict[str, str | None] = {}
    for item in wanted:
        row = rows.get(item.path)
        if row is None:
            row = rows[item.path] = with_defaults(
                Recording, {"path": item.path, "kind": item.kind.value}
            )
            new.append(row)
        if row["sha256"] is None:
            errors[item.path] = _take_facts(row, (known or {}).get(item.path))
        row["call_id"] = row["call_id"] or item.call_id
        row["case_id"] = row["case_id"] or item.case_id
        if item.retention is not None and row["retained_until"] is None:
            days = item.retention.recordings_days
            row["retained_until"] = row["created_at"] + timedelta(days=days)
    changed = [
        {name: row[name] for name in _STATE} | {"recording_key": row["id"]}
        for path, row in rows.items()
        if path in stored and row != stored[path]
    ]
    execute_many(connection, _UPDATE_RECORDING, changed)
    if new:
        execute_many(connection, _INSERT_RECORDING, new)
        ids = ids_by(connection, _RECORDINGS.c.path, (row["path"] for row in new))
        for row in new:
            row["id"] = ids[row["path"]]
    owners = (rows[w.path]["call_id"] for w in wanted)
    linkedids = _mark_calls(connection, (call_id for call_id in owners if call_id is not None))
    recordings: list[IngestedRecording] = []
    problems: list[audit.Entry] = []
    for item in wanted:
        row = rows[item.path]
        linkedid = linkedids.get(row["call_id"]) if row["call_id"] is not None else None
        error = errors.get(item.path)
        if error is not None:
            log.error("recording %s: %s", row["id"], error)
            detail = {"path": item.path, "error": error, "call": linkedid}
            problems.append(("recording.missing", "recording", row["id"], detail))
        # Made read-only when its facts were taken, so that they stay true.
        warning = make_read_only(item.path) if item.path in errors and not error else None
        if warning is not None:
            log.warning("recording %s: %s", row["id"], warning)
        recordings.append(
            IngestedRecording(
                row["id"],
                item.path,
                row["kind"],
                row["call_id"],
                row["case_id"],
                row["sha256"],
                call_linkedid=linkedid,
                read_only_warning=warning,
            )
        )
    audit.record_many(session, actor, problems)
    return recordings


def ingest_recordings(
    session: Session, actor: Actor, wanted: Sequence[WantedRecording]
) -> list[IngestedRecording]:
    """``store_recordings``, each ingest audited with its hash."""
    recordings = store_recordings(session, actor, wanted)
    entries: list[audit.Entry] = [
        ("recording.ingest", "recording", recording.id, recording.audit_detail())
        for recording in recordings
    ]
    audit.record_many(session, actor, entries)
    return recordings


def ingest_recording(
    session: Session,
    actor: Actor,
    path: str,
    *,
    kind: RecordingKind,
    call_id: int | None = None,
    case_id: int | None = None,
    retention: RetentionSettings | None = None,
) -> IngestedRecording:
    """One recording: see ``ingest_recordings``."""
    wanted = WantedRecording(path, kind, call_id=call_id, case_id=case_id, retention=retention)
    return ingest_recordings(session, actor, [wanted])[0]


def resolve_path(settings: Settings, path: str) -> str:
    """Asterisk names MixMonitor files absolutely; a relative name is under recordings.root.
    Spelled as pathlib spells it ("a//b" is "a/b"), as the recordings found on disk are."""
    return str(Path(path) if Path(path).is_absolute() else settings.recordings.root / path)


def store_call_recordings(
    session: Session,
    settings: Settings,
    actor: Actor,
    wanted: Sequence[tuple[WithCase, str, RecordingKind]],
    known: Mapping[str, FileFacts | RecordingError] | None = None,
) -> list[IngestedRecording]:
    """The AMI listener's entry: MixMonitor files of stored calls (``kind`` CALLBACK for a
    callback an agent placed, MESSAGE for the caller's Record()ed complaint), each linked to
    its call and the call's case, kept for the retention period (``store_recordings``: the
    listener audits them with their call). Check ``call.recording_missing`` (or
    ``Recording.sha256 is None``) for a missing file."""
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
    return store_recordings(session, actor, items, known)
