"""The transcription job queue, kept in the casebook database so every worker on every machine
shares it. A job is claimed under a lease: a worker killed mid-job loses its lease and another
worker takes the job over; a result is stored only by the lease holder, in the same transaction
that marks the job done, so a recording is never transcribed into the casebook twice.

Concurrency (casebook.concurrency): a claim takes the job with FOR UPDATE SKIP LOCKED; every
later step (renew, finish, fail) reads the job FOR UPDATE before deciding that this worker still
holds it, so a takeover and a late finish cannot both be written. The case a transcript or a
failure updates is locked too: that is a report of what happened, applied to the case as it is
now, never refused by a person's change to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from casebook import audit
from casebook.access import Actor
from casebook.batch import chunked
from casebook.concurrency import locked
from casebook.limits import fitted
from casebook.models import (
    Case,
    DraftState,
    JobStatus,
    Recording,
    Transcript,
    TranscriptionJob,
    WithCase,
)
from casebook.retry import Backoff


@dataclass(frozen=True)
class TranscriptData:
    """What a worker hands back for one recording (plain values, no model objects)."""

    text: str
    model_name: str
    model_sha256: str | None
    language: str | None
    language_probability: float | None
    audio_seconds: float
    processing_seconds: float
    no_speech: bool
    segments: list[dict[str, Any]] = field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


@dataclass(frozen=True)
class QueuePolicy:
    lease_seconds: float = 600.0
    max_attempts: int = 3
    retry_delay_seconds: float = 30.0
    retry_max_delay_seconds: float = 3600.0

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.retry_delay_seconds, self.retry_max_delay_seconds)


def enqueue_transcriptions(
    session: Session, actor: Actor, recordings: Sequence[WithCase], now: datetime
) -> list[TranscriptionJob]:
    """Queue one job per recording (stored, with an id); queuing one again returns the job
    already there. A case waiting for its draft shows that it is being transcribed."""
    if not recordings:
        return []
    session.flush()  # anything added before is seen by the lookups below
    jobs: dict[int, TranscriptionJob] = {}
    queued: list[TranscriptionJob] = []
    case_ids: list[int] = []
    with session.no_autoflush:
        ids = [recording.id for recording in recordings if recording.id is not None]
        for keys in chunked(ids):
            query = select(TranscriptionJob).where(col(TranscriptionJob.recording_id).in_(keys))
            jobs |= {job.recording_id: job for job in session.exec(query)}
        for recording in recordings:
            assert recording.id is not None  # a stored recording
            if recording.id in jobs:
                continue
            job = jobs[recording.id] = TranscriptionJob(
                recording_id=recording.id, available_at=now, created_at=now
            )
            session.add(job)
            queued.append(job)
            if recording.case_id is not None:
                case_ids.append(recording.case_id)
        for keys in chunked(sorted(case_ids)):
            waiting = select(Case).where(col(Case.id).in_(keys)).order_by(col(Case.id))
            for case in session.exec(waiting.with_for_update()):
                if case.draft_state is None:
                    case.draft_state = DraftState.TRANSCRIBING.value
    session.flush()
    entries = [("transcription.queue", "recording", j.recording_id, {"job": j.id}) for j in queued]
    audit.record_many(session, actor, entries)
    return [jobs[recording.id or 0] for recording in recordings]


def enqueue_transcription(
    session: Session, actor: Actor, recording: WithCase, now: datetime
) -> TranscriptionJob:
    """One recording: see ``enqueue_transcriptions``."""
    return enqueue_transcriptions(session, actor, [recording], now)[0]


def claim_next_job(
    session: Session, worker: str, policy: QueuePolicy, now: datetime
) -> TranscriptionJob | None:
    """The oldest job that is due, or whose holder's lease ran out, now leased to ``worker``."""
    return next(iter(claim_jobs(session, worker, policy, now, 1)), None)


def claim_jobs(
    session: Session, worker: str, policy: QueuePolicy, now: datetime, limit: int
) -> list[TranscriptionJob]:
    """Up to ``limit`` of the oldest jobs that are due, or whose holder's lease ran out, each now
    leased to ``worker`` (a batching worker holds, renews and finishes them one by one).

    PostgreSQL: FOR UPDATE SKIP LOCKED lets concurrent workers pass over each other's claims.
    SQLite: the unit of work's BEGIN IMMEDIATE already makes claiming one writer at a time.
    """
    due = and_(
        col(TranscriptionJob.status) == JobStatus.QUEUED.value,
        col(TranscriptionJob.available_at) <= now,
    )
    abandoned = and_(
        col(TranscriptionJob.status) == JobStatus.RUNNING.value,
        col(TranscriptionJob.lease_expires_at) < now,
    )
    query = select(TranscriptionJob).where(or_(due, abandoned)).order_by(col(TranscriptionJob.id))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed: list[TranscriptionJob] = []
    # Again while some were given up: those no longer match, the next ones take their places.
    while len(claimed) < limit and (found := session.exec(query.limit(limit - len(claimed))).all()):
        for job in found:
            if job.status == JobStatus.RUNNING.value and job.attempts >= policy.max_attempts:
                # It killed its worker every time (e.g. a file that crashes the decoder): stop.
                _give_up(session, job, f"worker lost {job.attempts} times", now)
                continue
            job.status = JobStatus.RUNNING.value
            job.lease_owner = worker
            job.lease_expires_at = now + timedelta(seconds=policy.lease_seconds)
            job.attempts += 1
            session.add(job)
            claimed.append(job)
        session.flush()
    return claimed


def _held(session: Session, job_id: int, worker: str) -> TranscriptionJob | None:
    """The job, locked, if ``worker`` still holds its lease."""
    job = locked(session, TranscriptionJob, job_id)
    if job is None or job.status != JobStatus.RUNNING.value or job.lease_owner != worker:
        return None
    return job


def renew_lease(
    session: Session, job_id: int, worker: str, policy: QueuePolicy, now: datetime
) -> bool:
    job = _held(session, job_id, worker)
    if job is None:
        return False
    job.lease_expires_at = now + timedelta(seconds=policy.lease_seconds)
    session.add(job)
    return True


def recording_of(session: Session, job: TranscriptionJob) -> Recording:
    recording = session.get(Recording, job.recording_id)
    assert recording is not None  # foreign key
    return recording


def finish_job(
    session: Session, actor: Actor, job_id: int, worker: str, data: TranscriptData, now: datetime
) -> Transcript | None:
    """Store the transcript and the case's draft, if ``worker`` still holds the job.

    Returns None when the lease was lost (another worker owns the job now): nothing is written.
    """
    job = _held(session, job_id, worker)
    if job is None:
        return None
    recording = recording_of(session, job)
    transcript = Transcript(
        recording_id=job.recording_id,
        model_name=data.model_name,
        model_sha256=data.model_sha256,
        language=data.language,
        language_probability=data.language_probability,
        text=data.text,
        segments=data.segments,
        avg_logprob=data.avg_logprob,
        no_speech_prob=data.no_speech_prob,
        audio_seconds=data.audio_seconds,
        processing_seconds=data.processing_seconds,
        created_at=now,
    )
    session.add(transcript)
    job.status = JobStatus.DONE.value
    job.finished_at = now
    job.lease_owner = None
    job.lease_expires_at = None
    session.add(job)
    if recording.case_id is not None:
        case = locked(session, Case, recording.case_id)
        if case is not None:
            case.draft_text = data.text
            case.draft_state = (DraftState.NO_SPEECH if data.no_speech else DraftState.READY).value
            session.add(case)
    session.flush()
    audit.record(
        session,
        actor,
        "transcription.done",
        "recording",
        recording.id,
        {"job": job.id, "no_speech": data.no_speech, "model": data.model_name},
    )
    return transcript


def _give_up(session: Session, job: TranscriptionJob, error: str, now: datetime) -> None:
    job.status = JobStatus.FAILED.value
    job.last_error = error
    job.finished_at = now
    job.lease_owner = None
    job.lease_expires_at = None
    session.add(job)
    recording = recording_of(session, job)
    if recording.case_id is not None:
        case = locked(session, Case, recording.case_id)
        if case is not None:
            # The case keeps its recording; an agent types the complaint by hand.
            case.draft_state = DraftState.FAILED.value
            session.add(case)
    audit.record(
        session,
        "system:worker",
        "transcription.failed",
        "recording",
        recording.id,
        {"error": error},
    )


def fail_job(
    session: Session,
    job_id: int,
    worker: str,
    error: str,
    policy: QueuePolicy,
    now: datetime,
    *,
    permanent: bool,
) -> TranscriptionJob | None:
    """A failed attempt: a permanent error (bad audio) ends the job; another is retried later,
    after the site's retry backoff (jittered, so jobs that failed together spread out), until
    the attempts run out."""
    job = _held(session, job_id, worker)
    if job is None:
        return None
    # Cut to the column once, here: the audit entry of a failed job says it too.
    error = fitted(TranscriptionJob, "last_error", error)
    if permanent or job.attempts >= policy.max_attempts:
        _give_up(session, job, error, now)
    else:
        job.status = JobStatus.QUEUED.value
        job.last_error = error
        job.lease_owner = None
        job.lease_expires_at = None
        job.available_at = now + timedelta(seconds=policy.backoff.delay(job.attempts - 1))
        session.add(job)
    session.flush()
    return job
