"""Recorded calls for the QA tests: a case handled by an agent, its call and its recording."""

from __future__ import annotations

import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from casebook import cases
from casebook.access import Actor
from casebook.db import Database
from casebook.models import AuditEvent, Call, CaseStatus, Recording, RecordingKind
from hotline.app.config import Settings
from recordings.catalogue import owner_of
from recordings.ingest import ingest_recording

LISTENER = Actor.system("listener")
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def write_wav(
    path: Path, seconds: float = 1.5, rate: int = 8000, tone: bytes = b"\x00\x01"
) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(tone * int(seconds * rate))
    return path.read_bytes()


def stored_call(db: Database, linkedid: str) -> Call:
    def work(s: Session) -> Call:
        call = Call(linkedid=linkedid, abandoned=True)
        s.add(call)
        s.flush()
        return call

    return db.run(work)


def recorded_call(
    db: Database,
    settings: Settings,
    name: str,
    *,
    agent_id: int | None = None,
    category: str | None = "billing",
    status: CaseStatus = CaseStatus.OPEN,
    abandoned: bool = False,
    kind: RecordingKind = RecordingKind.CALL,
    created: datetime | None = None,
) -> Recording:
    """A call (with its case unless abandoned) and its ingested MixMonitor file."""
    path = settings.recordings.root / f"{name}.wav"
    write_wav(path, tone=name.encode()[:2].ljust(2, b"x"))

    def work(s: Session) -> Recording:
        case_id = None
        if not abandoned:
            case = cases.register_complaint(
                s, settings, LISTENER, caller_number="0910000001", uniqueid=name, linkedid=name
            )
            case.category, case.status, case.assigned_agent_id = category, status, agent_id
            s.add(case)
            case_id = case.id
        call = Call(linkedid=name, abandoned=abandoned, case_id=case_id)
        s.add(call)
        s.flush()
        ingested = ingest_recording(
            s,
            LISTENER,
            str(path),
            kind=kind,
            root=settings.recordings.root,
            call_id=call.id,
            case_id=call.case_id,
            retention=settings.retention,
        )
        assert ingested is not None
        recording = s.get(Recording, ingested.id)
        assert recording is not None
        if created is not None:
            recording.created_at = created
            days = settings.retention.recordings_days
            recording.retained_until = created + timedelta(days=days)
            s.add(recording)
        return recording

    return db.run(work)


def reference_of(db: Database, recording: Recording) -> str | None:
    with db.session() as s:
        return owner_of(s, recording).reference


def audit_events(db: Database, action: str) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)))
