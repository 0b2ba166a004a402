"""Hearing and exporting recordings: who may, proof that the file is the one ingested, and the
access in the audit log (who, when, which recording, why).

Roles with ``play_recordings`` may play and export any recording; an agent may play (never
export) the calls of cases assigned to them. What is played or exported is a copy whose bytes
were hashed as they were written, so the bytes checked are the bytes heard.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlmodel import Session

from casebook import audit
from casebook.access import Actor
from casebook.errors import AccessDenied, CasebookError, NotFound
from casebook.models import Recording
from recordings.catalogue import Owner, get_recording, owner_of

_CHUNK = 1 << 20
PLAY = "recording.play"
EXPORT = "recording.export"


class TamperedRecording(AccessDenied):
    """The file is gone or differs from the SHA-256 stored at ingest: refused, and audited."""


def _may(actor: Actor, action: str, owner: Owner) -> bool:
    if actor.can("play_recordings"):
        return True
    case = owner.case
    return (
        action == PLAY
        and case is not None
        and actor.agent_id is not None
        and case.assigned_agent_id == actor.agent_id
    )


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


def _verified_copy(
    actor: Actor, recording: Recording, owner: Owner, target: Path, action: str
) -> None:
    """Copy to ``target`` (readable by its owner only) hashing the bytes written; a mismatch
    removes the copy and refuses."""
    digest = hashlib.sha256()
    if recording.sha256 is None:
        problem = "its file was missing at ingest, so nothing proves it unchanged"
    else:
        try:
            with Path(recording.path).open("rb") as source:
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "wb") as copy:
                    while chunk := source.read(_CHUNK):
                        copy.write(chunk)
                        digest.update(chunk)
        except FileNotFoundError:
            problem = "its file is missing"
        else:
            if digest.hexdigest() == recording.sha256:
                return
            problem = "its file no longer matches the SHA-256 stored at ingest"
    target.unlink(missing_ok=True)
    raise audit.denial(
        actor,
        action,
        "recording",
        recording.id,
        f"recording {recording.id} refused: {problem} (case {owner.reference or '-'})",
        detail={"expected": recording.sha256, "actual": digest.hexdigest(), "path": recording.path},
        error=TamperedRecording,
    )


def copy_for_playing(
    session: Session, actor: Actor, recording_id: int, reason: str, folder: Path
) -> Path:
    """A verified copy in ``folder`` (a private temporary folder) for the player; audited."""
    recording, owner = _authorise(session, actor, recording_id, PLAY, reason)
    target = folder / Path(recording.path).name
    _verified_copy(actor, recording, owner, target, PLAY)
    detail = {"why": reason, "case": owner.reference, "sha256": recording.sha256}
    audit.record(session, actor, PLAY, "recording", recording_id, detail)
    return target


def export_recording(
    session: Session, actor: Actor, recording_id: int, destination: Path, reason: str
) -> Path:
    """A verified copy at ``destination`` (a file, or a folder to put it in); audited. The copy
    gets its final name only after the audit entry is written."""
    recording, owner = _authorise(session, actor, recording_id, EXPORT, reason)
    target = destination / Path(recording.path).name if destination.is_dir() else destination
    if target.exists():
        raise CasebookError(f"{target} exists: not overwritten")
    partial = target.with_name(target.name + ".partial")
    _verified_copy(actor, recording, owner, partial, EXPORT)
    detail = {"why": reason, "case": owner.reference, "to": str(target), "sha256": recording.sha256}
    audit.record(session, actor, EXPORT, "recording", recording_id, detail)
    partial.replace(target)
    return target
