"""Hearing and exporting recordings: who may, proof that the file is the one ingested, and the
access in the audit log (who, when, which recording, why).

Roles with ``play_recordings`` may play and export any recording; an agent may play (never
export) the calls of cases assigned to them and of the draft they have open (its lease,
casebook.draft_leases). What is played or exported is a copy whose bytes
were hashed as they were written, so the bytes checked are the bytes heard.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlmodel import Session

from casebook import audit
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.draft_leases import has_open
from casebook.errors import AccessDenied, CasebookError, NotFound
from casebook.limits import cut
from casebook.models import Recording
from recordings.catalogue import Owner, get_recording, owner_of
from recordings.ingest import RecordingRefused, confined_path, open_recording

_CHUNK = 1 << 20
PLAY = "recording.play"
EXPORT = "recording.export"
# Playing happens on the person's machine, out of the server's sight: the server knows only
# that it sent the copy (SENT), then what the client says of the playback (PLAYED, or
# PLAY_FAILED with the player's words). A client that never says leaves the listen at SENT;
# one that lies cannot be caught: the log says what it says, and who said it.
SENT = "recording.sent"
PLAYED = "recording.played"
PLAY_FAILED = "recording.play_failed"
# The player's last words kept in the log (ALSA says much, little of it useful).
PLAYER_ERROR_CHARS = 300


class TamperedRecording(AccessDenied):
    """The file is gone or differs from the SHA-256 stored at ingest: refused, and audited."""


def _may(actor: Actor, action: str, owner: Owner) -> bool:
    # Exporting takes the role; playing is also for the agent the case is assigned to, and for
    # the agent reviewing its draft now (their live lease: casebook.draft_leases).
    if action == EXPORT:
        return actor.can("play_recordings")
    case = owner.case
    return actor.may_play(case) or (case is not None and has_open(actor, case, utcnow()))


def _authorise(
    session: Session, actor: Actor, recording_id: int, action: str, reason: str
) -> tuple[Recording, Owner]:
    if not reason.strip():
        raise CasebookError("say why (--reason): every listen and export is on record")
    recording = get_recording(session, recording_id)
    owner = owner_of(session, recording)
    if not _may(actor, action, owner):
        verb = "play" if action == PLAY else "export"
        raise audit.denial(
            actor,
            action,
            "recording",
            recording_id,
            f"{actor.username} may not {verb} recording {recording_id}",
            detail={"case": owner.reference, "why": reason},
        )
    if recording.deleted_at is not None:
        when = recording.deleted_at.date().isoformat()
        raise NotFound(f"recording {recording_id} was deleted by retention on {when}")
    return recording, owner


def _refused(
    actor: Actor, recording: Recording, owner: Owner, action: str, problem: str, actual: str
) -> AccessDenied:
    return audit.denial(
        actor,
        action,
        "recording",
        recording.id,
        f"recording {recording.id} refused: {problem} (case {owner.reference or '-'})",
        detail={"expected": recording.sha256, "actual": actual, "path": recording.path},
        error=TamperedRecording,
    )


def _source(actor: Actor, recording: Recording, owner: Owner, action: str, root: Path) -> str:
    """The recording's file under recordings.root; anything else is refused and audited."""
    try:
        return confined_path(root, recording.path)
    except RecordingRefused as exc:
        raise _refused(actor, recording, owner, action, str(exc), "") from exc


def _verified_copy(
    actor: Actor, recording: Recording, owner: Owner, source: str, target: Path, action: str
) -> None:
    """Copy ``source`` (confined, opened without following a symlink) to ``target`` (readable
    by its owner only) hashing the bytes written; a mismatch removes the copy and refuses."""
    digest = hashlib.sha256()
    if recording.sha256 is None:
        problem = "its file was missing at ingest, so nothing proves it unchanged"
    else:
        try:
            reading = os.fdopen(open_recording(source), "rb")
        except FileNotFoundError:
            problem = "its file is missing"
        except RecordingRefused as exc:
            problem = str(exc)
        else:
            # Only the recording's own file is its integrity; the copy's folder is the caller's.
            with reading:
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "wb") as copy:
                    while chunk := reading.read(_CHUNK):
                        copy.write(chunk)
                        digest.update(chunk)
            if digest.hexdigest() == recording.sha256:
                return
            problem = "its file no longer matches the SHA-256 stored at ingest"
    target.unlink(missing_ok=True)
    raise _refused(actor, recording, owner, action, problem, digest.hexdigest())


@dataclass(frozen=True)
class VerifiedCopy:
    """A copy whose bytes hashed to the SHA-256 stored at ingest as they were written."""

    path: Path
    sha256: str


def verified_copy(
    session: Session,
    actor: Actor,
    recording_id: int,
    reason: str,
    folder: Path,
    *,
    purpose: Literal["play", "export"],
    root: Path,
) -> VerifiedCopy:
    """A verified copy in ``folder`` (an empty private folder of the caller's, which deletes it
    once the copy has been played or sent); audited as a listen or an export, with its reason.
    A retried unit of work writes the same file again. ``root``: recordings.root, the only
    place a recording is read from. A copy to play is logged as sent (SENT), not as heard: the
    client says how the playback went (``report_playback``)."""
    action = PLAY if purpose == "play" else EXPORT
    recording, owner = _authorise(session, actor, recording_id, action, reason)
    source = _source(actor, recording, owner, action, root)
    target = folder / Path(source).name
    _verified_copy(actor, recording, owner, source, target, action)
    assert recording.sha256 is not None  # _verified_copy refuses a recording without one
    detail = {"why": reason, "case": owner.reference, "sha256": recording.sha256}
    if action == EXPORT:
        detail["to"] = "download"  # streamed to the person's own machine (the HTTP API)
    else:
        detail["purpose"] = "play"
    audit.record(
        session, actor, EXPORT if action == EXPORT else SENT, "recording", recording_id, detail
    )
    return VerifiedCopy(target, recording.sha256)


def report_playback(
    session: Session,
    actor: Actor,
    recording_id: int,
    reason: str,
    *,
    played: bool,
    error: str | None = None,
) -> None:
    """What the client says of playing a copy it was sent: heard (PLAYED), or the player
    failed (PLAY_FAILED, with the player's last words). Only someone who may play the
    recording may say so."""
    recording, owner = _authorise(session, actor, recording_id, PLAY, reason)
    detail: dict[str, object] = {"why": reason, "case": owner.reference}
    if not played:
        detail["error"] = cut(" ".join((error or "").split()), PLAYER_ERROR_CHARS) or None
    action = PLAYED if played else PLAY_FAILED
    audit.record(session, actor, action, "recording", recording.id, detail)


def copy_for_playing(
    session: Session, actor: Actor, recording_id: int, reason: str, folder: Path, *, root: Path
) -> Path:
    """A verified copy in ``folder`` (a private temporary folder) for the player; audited.
    ``root``: recordings.root, the only place a recording is read from."""
    copy = verified_copy(session, actor, recording_id, reason, folder, purpose="play", root=root)
    return copy.path


def export_recording(
    session: Session,
    actor: Actor,
    recording_id: int,
    destination: Path,
    reason: str,
    *,
    root: Path,
) -> Path:
    """A verified copy at ``destination`` (a file, or a folder to put it in); audited. The copy
    gets its final name only after the audit entry is written. ``root``: recordings.root,
    the only place a recording is read from."""
    folder = destination if destination.is_dir() else destination.parent
    if not folder.is_dir():
        # Said before anything is read: the recording is not at fault, nothing is logged.
        raise CasebookError(f"folder {folder} does not exist: nothing exported")
    recording, owner = _authorise(session, actor, recording_id, EXPORT, reason)
    source = _source(actor, recording, owner, EXPORT, root)
    target = destination / Path(source).name if destination.is_dir() else destination
    if target.exists():
        raise CasebookError(f"{target} exists: not overwritten")
    partial = target.with_name(target.name + ".partial")
    _verified_copy(actor, recording, owner, source, partial, EXPORT)
    detail = {"why": reason, "case": owner.reference, "to": str(target), "sha256": recording.sha256}
    audit.record(session, actor, EXPORT, "recording", recording_id, detail)
    partial.replace(target)
    return target
