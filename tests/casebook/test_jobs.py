from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlmodel import Session, select

from casebook import cases, jobs
from casebook.access import Actor
from casebook.db import Database
from casebook.models import Case, DraftState, JobStatus, RecordingKind, Transcript, TranscriptionJob
from casebook.settings import DatabaseSettings
from hotline.app.config import Settings
from recordings.ingest import ingest_recording

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
WORKER = Actor.system("worker")
POLICY = jobs.QueuePolicy(lease_seconds=60, max_attempts=3, retry_delay_seconds=10)


def queue_recordings(db: Database, settings: Settings, count: int, first: int = 0) -> list[int]:
    """``count`` registered complaints, each with its message recording queued; ``first``
    numbers the first call (for more than one batch)."""
    ids = []
    for n in range(first, first + count):

        def work(s: Session, n: int = n) -> int:
            case = cases.register_complaint(
                s, settings, Actor.system("ivr"), caller_number="0910000001", uniqueid=f"u{n}"
            )
            recording = ingest_recording(
                s,
                WORKER,
                f"/nowhere/message-{n}.wav",
                kind=RecordingKind.MESSAGE,
                root="/nowhere",
                case_id=case.id,
            )
            assert recording is not None
            return jobs.enqueue_transcription(s, WORKER, recording, NOW).id or 0

        ids.append(db.run(work))
    return ids


def transcript(text: str = "انقطاع الخدمة", *, no_speech: bool = False) -> jobs.TranscriptData:
    return jobs.TranscriptData(
        text=text,
        model_name="whisper-base",
        model_sha256="ab" * 32,
        language="ar",
        language_probability=0.9,
        audio_seconds=4.0,
        processing_seconds=1.0,
        no_speech=no_speech,
        segments=[{"start": 0.0, "end": 4.0, "text": text}],
    )


def claim(db: Database, worker: str, now: datetime = NOW) -> TranscriptionJob | None:
    return db.run(lambda s: jobs.claim_next_job(s, worker, POLICY, now))


def test_queueing_twice_keeps_one_job_and_marks_the_draft(db: Database, settings: Settings) -> None:
    (job_id,) = queue_recordings(db, settings, 1)
    with db.session() as s:
        recording_job = s.get(TranscriptionJob, job_id)
        assert recording_job is not None
        recording = jobs.recording_of(s, recording_job)
        assert jobs.enqueue_transcription(s, WORKER, recording, NOW).id == job_id
        assert s.exec(select(Case)).one().draft_state == DraftState.TRANSCRIBING


def test_a_finished_job_fills_the_draft_once(db: Database, settings: Settings) -> None:
    queue_recordings(db, settings, 1)
    job = claim(db, "w1")
    assert job is not None and job.id is not None
    job_id = job.id
    assert claim(db, "w2") is None  # leased: nobody else gets it
    stored = db.run(lambda s: jobs.finish_job(s, WORKER, job_id, "w1", transcript(), NOW))
    assert stored is not None
    again = db.run(lambda s: jobs.finish_job(s, WORKER, job_id, "w1", transcript(), NOW))
    assert again is None
    with db.session() as s:
        case = s.exec(select(Case)).one()
        assert (case.draft_text, case.draft_state) == ("انقطاع الخدمة", DraftState.READY)
        assert len(s.exec(select(Transcript)).all()) == 1
    assert claim(db, "w2", NOW + timedelta(hours=1)) is None


def test_a_killed_workers_job_is_taken_over_and_its_late_result_discarded(
    db: Database, settings: Settings
) -> None:
    queue_recordings(db, settings, 1)
    first = claim(db, "dead-worker")
    assert first is not None and first.id is not None
    job_id = first.id
    later = NOW + timedelta(seconds=POLICY.lease_seconds + 1)
    second = claim(db, "w2", later)
    assert second is not None and second.id == job_id and second.attempts == 2
    # The first worker was only slow: its result must not land twice.
    assert (
        db.run(lambda s: jobs.finish_job(s, WORKER, job_id, "dead-worker", transcript(), later))
        is None
    )
    assert (
        db.run(lambda s: jobs.finish_job(s, WORKER, job_id, "w2", transcript(), later)) is not None
    )
    with db.session() as s:
        assert len(s.exec(select(Transcript)).all()) == 1


def test_lease_renewal_keeps_a_long_job(db: Database, settings: Settings) -> None:
    queue_recordings(db, settings, 1)
    job = claim(db, "w1")
    assert job is not None and job.id is not None
    job_id = job.id
    halfway = NOW + timedelta(seconds=50)
    assert db.run(lambda s: jobs.renew_lease(s, job_id, "w1", POLICY, halfway))
    assert claim(db, "w2", NOW + timedelta(seconds=70)) is None
    assert not db.run(lambda s: jobs.renew_lease(s, job_id, "w2", POLICY, halfway))


def test_bad_audio_fails_its_job_for_good_and_marks_the_case(
    db: Database, settings: Settings
) -> None:
    queue_recordings(db, settings, 2)
    job = claim(db, "w1")
    assert job is not None and job.id is not None
    job_id = job.id
    db.run(lambda s: jobs.fail_job(s, job_id, "w1", "corrupt WAV", POLICY, NOW, permanent=True))
    other = claim(db, "w1")
    assert other is not None and other.id != job_id  # the others still complete
    with db.session() as s:
        failed = s.get(TranscriptionJob, job_id)
        assert failed is not None and failed.status == JobStatus.FAILED
        states = sorted(c.draft_state or "" for c in s.exec(select(Case)))
        assert states == [DraftState.FAILED, DraftState.TRANSCRIBING]


def test_transient_failures_back_off_then_give_up(db: Database, settings: Settings) -> None:
    queue_recordings(db, settings, 1)
    moment = NOW
    for attempt in range(1, POLICY.max_attempts + 1):
        job = claim(db, "w1", moment)
        assert job is not None and job.attempts == attempt
        job_id = job.id or 0
        failed = db.run(
            partial(
                jobs.fail_job,
                job_id=job_id,
                worker="w1",
                error="busy",
                policy=POLICY,
                now=moment,
                permanent=False,
            )
        )
        assert failed is not None
        assert claim(db, "w1", moment) is None  # not before its backoff
        moment = failed.available_at + timedelta(seconds=1)
    with db.session() as s:
        assert s.exec(select(TranscriptionJob)).one().status == JobStatus.FAILED


def test_no_speech_gives_an_empty_flagged_draft(db: Database, settings: Settings) -> None:
    queue_recordings(db, settings, 1)
    job = claim(db, "w1")
    assert job is not None and job.id is not None
    job_id = job.id
    db.run(lambda s: jobs.finish_job(s, WORKER, job_id, "w1", transcript("", no_speech=True), NOW))
    with db.session() as s:
        case = s.exec(select(Case)).one()
        assert (case.draft_text, case.draft_state) == ("", DraftState.NO_SPEECH)


def _drain(url: str, worker: str, done: Path) -> None:
    db = Database(DatabaseSettings(url=url, retry_seconds=30))
    while (job := db.run(lambda s: jobs.claim_next_job(s, worker, POLICY, NOW))) is not None:
        job_id = job.id or 0
        finish = partial(
            jobs.finish_job, actor=WORKER, job_id=job_id, worker=worker, data=transcript(), now=NOW
        )
        if db.run(finish):
            with done.open("a") as log:
                log.write(f"{job_id}\n")
    db.dispose()


def test_two_worker_processes_do_every_job_exactly_once(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    ids = queue_recordings(db, settings, 40)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_drain, args=(db.settings.url, f"w{n}", tmp_path / f"w{n}.log"))
        for n in (1, 2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    # A worker that never won a job writes no log: the other did them all, which is fine.
    logs = [tmp_path / f"w{n}.log" for n in (1, 2)]
    done = [int(line) for log in logs if log.exists() for line in log.read_text().split()]
    assert sorted(done) == sorted(ids)
    with db.session() as s:
        assert len(s.exec(select(Transcript)).all()) == 40


def test_a_batch_claim_takes_the_oldest_due_jobs_and_leaves_the_rest(
    db: Database, settings: Settings
) -> None:
    ids = queue_recordings(db, settings, 5)
    first = db.run(lambda s: jobs.claim_jobs(s, "w1", POLICY, NOW, 3))
    assert [job.id for job in first] == ids[:3]
    assert all(job.lease_owner == "w1" and job.attempts == 1 for job in first)
    # Another worker gets the rest, never a job the first one holds.
    second = db.run(lambda s: jobs.claim_jobs(s, "w2", POLICY, NOW, 3))
    assert [job.id for job in second] == ids[3:]
    assert db.run(lambda s: jobs.claim_jobs(s, "w3", POLICY, NOW, 3)) == []


def test_a_batch_claim_gives_up_a_job_that_killed_its_workers_and_fills_its_place(
    db: Database, settings: Settings
) -> None:
    ids = queue_recordings(db, settings, 3)
    for attempt in range(POLICY.max_attempts):  # the first job's worker dies every time
        now = NOW + timedelta(seconds=(POLICY.lease_seconds + 1) * attempt)
        claimed = db.run(partial(_claim_one, now=now))
        assert [job.id for job in claimed] == [ids[0]]
    later = NOW + timedelta(seconds=(POLICY.lease_seconds + 1) * POLICY.max_attempts)
    claimed = db.run(lambda s: jobs.claim_jobs(s, "w", POLICY, later, 2))
    assert [job.id for job in claimed] == ids[1:]
    with db.session() as s:
        given_up = s.get(TranscriptionJob, ids[0])
        assert given_up is not None and given_up.status == JobStatus.FAILED


def _claim_one(session: Session, now: datetime) -> list[TranscriptionJob]:
    return jobs.claim_jobs(session, "w", POLICY, now, 1)
