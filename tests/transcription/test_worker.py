"""The transcription worker on the casebook's job queue: drafts filled, bad audio failed alone,
and a worker killed mid-job taken over so that every job completes exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from sqlmodel import col, select

from casebook import site_secrets
from casebook.db import Database
from casebook.drafts import Draft
from casebook.models import Case, DraftState, JobStatus, Transcript, TranscriptionJob
from hotline.app.config import Settings, load_settings
from ivr_flows.casebook_backend import CasebookBackend
from ivr_flows.engine import leave_message
from tests.transcription.conftest import ARABIC
from tests.transcription.test_pipeline import scripted, segment
from transcription.pipeline import transcribe
from transcription.worker import TranscriptionWorker

HOTLINE = str(Path(sys.executable).with_name("hotline"))


def queue_message(db: Database, settings: Settings, source: Path, uniqueid: str) -> None:
    """A complaint registered by the IVR with its message recording queued, as in production."""
    leave_message(
        CasebookBackend(db, settings),
        settings.recordings.root,
        source,
        uniqueid=uniqueid,
        caller_number="0910000001",
    )


def drafts(db: Database) -> dict[str, tuple[str | None, str | None]]:
    with db.session() as session:
        return {
            case.call_uniqueid or "": (case.draft_state, case.draft_text)
            for case in session.exec(select(Case))
        }


def drain(worker: TranscriptionWorker, db: Database, jobs_expected: int) -> None:
    worker.start()
    deadline = time.monotonic() + 600  # a safety net only
    while time.monotonic() < deadline:
        with db.session() as session:
            open_jobs = session.exec(
                select(TranscriptionJob).where(
                    col(TranscriptionJob.status).in_([JobStatus.QUEUED, JobStatus.RUNNING])
                )
            ).all()
        if not open_jobs and worker.stats.done + worker.stats.failed >= jobs_expected:
            break
        time.sleep(0.05)
    worker.stop()


def test_drafts_are_filled_and_a_corrupt_recording_fails_alone(
    db: Database, settings: Settings
) -> None:
    queue_message(db, settings, ARABIC / "ar02.wav", "u-good")
    queue_message(db, settings, ARABIC / "corrupt.wav", "u-corrupt")
    queue_message(db, settings, ARABIC / "ar03.wav", "u-also-good")
    model = scripted([segment("الفاتورة مرتفعة", probabilities=[0.95, 0.3])])
    worker = TranscriptionWorker(
        db,
        settings,
        concurrency=2,
        idle_seconds=0.05,
        transcriber=partial(transcribe, settings=settings.transcription, model=model),
    )
    drain(worker, db, 3)
    assert (worker.stats.done, worker.stats.failed) == (2, 1)
    states = drafts(db)
    assert states["u-good"] == (DraftState.READY, "الفاتورة مرتفعة")
    assert states["u-also-good"] == (DraftState.READY, "الفاتورة مرتفعة")
    # The case keeps its recording; an agent types the complaint by hand.
    assert states["u-corrupt"] == (DraftState.FAILED, None)
    with db.session() as session:
        failed = session.exec(
            select(TranscriptionJob).where(TranscriptionJob.status == JobStatus.FAILED)
        ).one()
        transcript = session.exec(select(Transcript)).first()
    assert failed.last_error is not None and "corrupt" in failed.last_error
    assert transcript is not None and transcript.model_sha256 == "ab" * 32
    assert transcript.segments[0]["words"][1]["doubtful"] is True


def test_the_agent_sees_digits_and_the_words_said_are_stored(
    db: Database, settings: Settings
) -> None:
    queue_message(db, settings, ARABIC / "ar02.wav", "u-numbers")
    said = segment(
        "رقمي صفر تسعة واحد اتنين ودفعت خمسين دينار", probabilities=[0.9] * 6 + [0.2, 0.9]
    )
    worker = TranscriptionWorker(
        db,
        settings,
        idle_seconds=0.05,
        transcriber=partial(transcribe, settings=settings.transcription, model=scripted([said])),
    )
    drain(worker, db, 1)
    assert drafts(db)["u-numbers"] == (DraftState.READY, "رقمي 0912 ودفعت 50 دينار")
    with db.session() as session:
        case = session.exec(select(Case)).one()
        transcript = session.exec(select(Transcript)).one()
    assert transcript.segments[0]["numbers"] == [
        {"spoken": "صفر تسعة واحد اتنين", "digits": "0912"},
        {"spoken": "خمسين", "digits": "50"},
    ]
    # What the agent's draft view shows: the digits, with Whisper's doubt kept on the number.
    assert Draft(case, None, transcript).marked_words() == [
        ("رقمي", False),
        ("0912", False),
        ("ودفعت", False),
        ("50", True),
        ("دينار", False),
    ]


@pytest.mark.slow
def test_real_model_drafts_and_a_worker_killed_mid_job_is_taken_over(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "database:\n  url: sqlite:///hotline.db\n"
        # Two batches (3 + 1): the kill comes while the first is in hand.
        "transcription:\n  job_lease_seconds: 3\n  job_retry_seconds: 1\n  batch_size: 3\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    db = Database(settings.database, create=True)
    site_secrets.create_site_keys(settings.secrets)  # as `hotline db upgrade` makes them
    clips = ["ar01", "ar05", "ar10", "silence"]
    for clip in clips:
        queue_message(db, settings, ARABIC / f"{clip}.wav", clip)
    env = {**os.environ, "HOTLINE_CONFIG": str(config)}
    first = subprocess.Popen(
        [HOTLINE, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def running() -> bool:
        with db.session() as session:
            return (
                session.exec(
                    select(TranscriptionJob).where(TranscriptionJob.status == JobStatus.RUNNING)
                ).first()
                is not None
            )

    deadline = time.monotonic() + 300  # safety net: model assembly and load come first
    while not running() and time.monotonic() < deadline:
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)  # mid-batch: no chance to finish or give the jobs back
    first.wait()
    second = subprocess.Popen(
        [HOTLINE, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        while time.monotonic() < deadline:
            with db.session() as session:
                done = session.exec(
                    select(TranscriptionJob).where(TranscriptionJob.status == JobStatus.DONE)
                ).all()
            if len(done) == len(clips):
                break
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        _, log = second.communicate(timeout=120)
    assert second.returncode == 0, log
    with db.session() as session:
        transcripts = session.exec(select(Transcript)).all()
        taken_over = session.exec(
            select(TranscriptionJob).where(col(TranscriptionJob.attempts) > 1)
        ).all()
    assert len(transcripts) == len(clips)  # each exactly once
    assert len({t.recording_id for t in transcripts}) == len(clips)
    assert taken_over  # the killed worker's job was run again by the second worker
    states = drafts(db)
    assert states["silence"] == (DraftState.NO_SPEECH, "")
    for clip in ("ar01", "ar05", "ar10"):
        state, text = states[clip]
        assert state == DraftState.READY and text and any("\u0600" <= c <= "\u06ff" for c in text)
    db.dispose()
