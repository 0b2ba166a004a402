"""Ingest a recording: who it belongs to, and the facts that later prove it unchanged
(SHA-256, size) and describe it (duration, sample rate, channels, format)."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Table
from sqlmodel import Session

from casebook import audit
from casebook.access import Actor
from casebook.batch import chunked, execute_many, ids_by, with_defaults
from casebook.models import Call, Recording, RecordingKind, WithCase
from recordings.settings import RecordingsConfig, RetentionSettings

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class RecordingError(Exception):
    """A recording that cannot be read; the message names the file and the reason."""


class RecordingRefused(RecordingError):
    """A path that is not a plain file inside recordings.root (a ``..``, an absolute path
    elsewhere, a symlink, a NUL byte, an over-long name): never opened, hashed, made read-only,
    exported or deleted. The message says why, with the path as given."""


# Linux's limits; a longer name cannot be a file Asterisk wrote.
_NAME_MAX = 255
_PATH_MAX = 4096
# No symlink is followed in the last step (ELOOP), a FIFO does not block the open.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def confined_path(root: str | os.PathLike[str], given: str) -> str:
    """Where recording ``given`` is: a name relative to ``root`` (recordings.root) or an
    absolute one inside it (Asterisk names MixMonitor files absolutely), spelled without
    ``.``, ``..`` or doubled slashes. The one place that decides which paths recordings may
    touch: anything else raises ``RecordingRefused``. The folders on the way must really be
    inside the real root (no symlinked folder leads out) and the file is no symlink; it is
    opened with O_NOFOLLOW (``open_recording``), so one made in between is not followed
    either."""

    def refuse(why: str) -> RecordingRefused:
        return RecordingRefused(f"{given!r}: refused, {why}")

    if "\0" in given:
        raise refuse("not a file name (a NUL byte)")
    if len(os.fsencode(given)) > _PATH_MAX or any(
        len(os.fsencode(part)) > _NAME_MAX for part in given.split(os.sep)
    ):
        raise refuse("name too long")
    top = os.path.abspath(root)
    real_top = os.path.realpath(top)
    path = os.path.normpath(os.path.join(top, given))
    if not (_inside(path, top) or _inside(path, real_top)) or path in (top, real_top):
        raise refuse(f"outside recordings.root ({top})")
    if not _inside(os.path.realpath(os.path.dirname(path)), real_top):
        raise refuse(f"its folder leads out of recordings.root ({top}) through a symlink")
    if os.path.islink(path):
        raise refuse("a symlink")
    return path


def open_recording(path: str) -> int:
    """A read-only descriptor of a regular file, never through a symlink (RecordingRefused),
    else OSError as open raises it."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RecordingRefused(f"{path!r}: refused, a symlink") from exc
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise RecordingRefused(f"{path!r}: refused, not a regular file")
    return descriptor


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
    with open(open_recording(os.fspath(path)), "rb", buffering=0) as stream:
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
    A-law, GSM): the duration comes from the byte rate and the audio the file holds, not
    the data chunk's length: Asterisk writes that length only when it closes the file, so
    a recording cut short by a crash says 0 (or what it held when last updated), and one
    cut off says more than is there."""
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
            return max(size - body, 0) / byte_rate, rate, channels
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
    stored at ingest still proves them unchanged, so this is reported, not fatal. A symlink
    is never followed (its target may be anything: the AMI secret, the database)."""
    try:
        os.chmod(path, 0o444, follow_symlinks=False)
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


class RefusedPath(str):
    """A recording path as given, which ``confined_path`` refused, with the refusal: what
    ``resolve_path`` returns for it, so that reading it (``inspect_files``) and storing it
    (``store_recordings``) refuse it alike without a second look."""

    refusal: RecordingRefused

    def __new__(cls, given: str, refusal: RecordingRefused) -> RefusedPath:
        path = super().__new__(cls, given)
        path.refusal = refusal
        return path


def under_root(root: str | os.PathLike[str], given: str) -> str:
    """``confined_path``, or a ``RefusedPath`` (never an exception: one hostile name in a
    batch of calls must not stop the others)."""
    try:
        return confined_path(root, given)
    except RecordingRefused as exc:
        return RefusedPath(given, exc)


def _inspect(path: str) -> FileFacts | RecordingError:
    if isinstance(path, RefusedPath):
        return path.refusal
    try:
        return inspect_file(path)
    except RecordingError as exc:
        return exc


def inspect_files(paths: Iterable[str]) -> dict[str, FileFacts | RecordingError]:
    """Each file's facts or why it has none: what ``store_recordings`` takes as ``known``.
    Paths from ``resolve_path``: a refused one is not opened."""
    return {path: _inspect(path) for path in paths}


_RECORDINGS: Table = Recording.__table__  # type: ignore[attr-defined]
_CALLS: Table = Call.__table__  # type: ignore[attr-defined]
_INSERT_RECORDING = _RECORDINGS.insert()
_UPDATE_RECORDING = _RECORDINGS.update().where(_RECORDINGS.c.id == sa.bindparam("recording_key"))
_MARK_CALL = _CALLS.update().where(_CALLS.c.id == sa.bindparam("call_key"))


def _mark_calls(
    connection: Connection, call_ids: Iterable[int], refused: set[int]
) -> dict[int, str]:
    """A call is marked while any of its recordings has no facts (missing or unreadable), or
    when a recording of it was refused now. Returns each call's Linkedid, for the audit log."""
    calls, recordings = _CALLS.c, _RECORDINGS.c
    linkedids: dict[int, str] = {}
    for keys in chunked(call_ids):
        unread = sa.select(recordings.call_id).where(
            recordings.call_id.in_(keys), recordings.sha256.is_(None)
        )
        marked = set(connection.execute(unread).scalars()) | refused
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
) -> list[IngestedRecording | None]:
    """Store each recording once per path (a second ingest links what the first did not know,
    and reads a file that was missing the first time). A missing or unreadable file is never
    skipped: the row keeps its path without a hash, its call is marked ``recording_missing``
    and the audit log says why at once. ``retention`` sets the date it may be deleted from.
    ``known``: facts of files read before (``inspect_files``), by path; others are read here.
    A ``RefusedPath`` (see ``resolve_path``) gets no row and no file access: None in its
    place, its call marked and ``recording.refused`` audited with the path as given.
    The ingest itself is for the caller to audit (``ingest_recordings``, or the listener with
    its call)."""
    if not wanted:
        return []
    session.flush()  # anything added before is seen by the lookups below
    connection = session.connection()
    accepted = [w for w in wanted if not isinstance(w.path, RefusedPath)]
    # Each path's row as ingest leaves it: those already stored are updated where ingest
    # changed them, new ones are inserted in one statement (with the model's defaults).
    rows = _stored_rows(connection, (w.path for w in accepted))
    stored = {path: dict(row) for path, row in rows.items()}
    new: list[dict[str, Any]] = []
    errors: dict[str, str | None] = {}
    for item in accepted:
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
    refused = {
        w.call_id for w in wanted if isinstance(w.path, RefusedPath) and w.call_id is not None
    }
    owners = [rows[w.path]["call_id"] for w in accepted] + list(refused)
    linkedids = _mark_calls(
        connection, (call_id for call_id in owners if call_id is not None), refused
    )
    recordings: list[IngestedRecording | None] = []
    problems: list[audit.Entry] = []
    for item in wanted:
        if isinstance(item.path, RefusedPath):
            why = str(item.path.refusal)
            log.error("recording not ingested: %s", why)
            call = linkedids.get(item.call_id) if item.call_id is not None else None
            detail = {"path": str(item.path), "error": why, "kind": item.kind.value, "call": call}
            problems.append(("recording.refused", "recording", None, detail))
            recordings.append(None)
            continue
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
) -> list[IngestedRecording | None]:
    """``store_recordings``, each ingest audited with its hash."""
    recordings = store_recordings(session, actor, wanted)
    entries: list[audit.Entry] = [
        ("recording.ingest", "recording", recording.id, recording.audit_detail())
        for recording in recordings
        if recording is not None
    ]
    audit.record_many(session, actor, entries)
    return recordings


def ingest_recording(
    session: Session,
    actor: Actor,
    path: str,
    *,
    kind: RecordingKind,
    root: str | os.PathLike[str],
    call_id: int | None = None,
    case_id: int | None = None,
    retention: RetentionSettings | None = None,
) -> IngestedRecording | None:
    """One recording: see ``ingest_recordings``. The path is confined to ``root``
    (recordings.root): None when it was refused (audited, nothing stored)."""
    wanted = WantedRecording(
        under_root(root, path), kind, call_id=call_id, case_id=case_id, retention=retention
    )
    return ingest_recordings(session, actor, [wanted])[0]


def resolve_path(settings: RecordingsConfig, path: str) -> str:
    """Where a recording the PBX named is: under recordings.root (``confined_path``; a
    ``RefusedPath`` when it is not, which ingest then refuses). Asterisk names MixMonitor
    files absolutely; a relative name is under recordings.root."""
    return under_root(settings.recordings.root, path)


def store_call_recordings(
    session: Session,
    settings: RecordingsConfig,
    actor: Actor,
    wanted: Sequence[tuple[WithCase, str, RecordingKind]],
    known: Mapping[str, FileFacts | RecordingError] | None = None,
) -> list[IngestedRecording | None]:
    """The AMI listener's entry: MixMonitor files of stored calls (``kind`` CALLBACK for a
    callback an agent placed, MESSAGE for the caller's Record()ed complaint), each linked to
    its call and the call's case, kept for the retention period (``store_recordings``: the
    listener audits them with their call). Check ``call.recording_missing`` (or
    ``Recording.sha256 is None``) for a missing file; None for a path refused (outside
    recordings.root)."""
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
