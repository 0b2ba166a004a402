"""The batching worker: several jobs claimed and transcribed together, each stored alone, a bad
recording failing alone, a lost lease losing only its own job; and the real model's batched pass
handing every recording back its own words."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from casebook import jobs
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import DraftState, JobStatus, Transcript, TranscriptionJob
from hotline.app.components import transcription_components
from hotline.app.config import Settings
from tests.transcription.conftest import ARABIC, manifest
from tests.transcription.test_pipeline import scripted, segment
from tests.transcription.test_worker import drafts, drain, queue_message
from transcription.audio import AudioError
from transcription.metrics import cer
from transcription.model import LoadedModel, load
from transcription.pipeline import transcribe, transcribe_batch
from transcription.result import TranscriptResult
from transcription.settings import TranscriptionSettings
from transcription.worker import TranscriptionWorker, one_by_one

Results = list[TranscriptResult | AudioError]


class Batches:
    """The scripted model's pipeline as a batched transcriber, remembering each batch's size;
    ``during`` runs while a batch is in hand (as another worker would, meanwhile)."""

    def __init__(self, settings: Settings, during: object = None) -> None:
        model = scripted([segment("الفاتورة مرتفعة")])
        self.transcribe = one_by_one(
            partial(transcribe, settings=settings.transcription, model=model)
        )
        self.sizes: list[int] = []
        self.during = during

    def __call__(self, paths: Sequence[Path]) -> Results:
        self.sizes.append(len(paths))
        if callable(self.during):
            self.during()
        return self.transcribe(paths)


def test_a_batch_is_claimed_together_stored_one_by_one_and_bad_audio_fails_alone(
    db: Database, settings: Settings
) -> None:
    settings.transcription.batch_size = 4
    names = ["ar02", "ar03", "corrupt", "ar04", "ar05"]
    for name in names:
        queue_message(db, settings, ARABIC / f"{name}.wav", f"u-{name}")
    batches = Batches(settings)
    worker = TranscriptionWorker(db, settings, idle_seconds=0.05, batch_transcriber=batches)
    drain(worker, db, len(names))
    assert batches.sizes == [4, 1]
    assert (worker.stats.done, worker.stats.failed, worker.stats.batches) == (4, 1, 2)
    states = drafts(db)
    assert states.pop("u-corrupt") == (DraftState.FAILED, None)
    assert set(states.values()) == {(DraftState.READY, "الفاتورة مرتفعة")}
    with db.session() as session:
        assert len(session.exec(select(Transcript)).all()) == 4


def test_the_worker_runs_a_pass_per_core_side_by_side(db: Database, settings: Settings) -> None:
    settings.transcription.batch_size = 2
    settings.transcription.concurrency = 2  # the default on this 2-core machine, said so
    names = ["ar02", "ar03", "ar04", "ar05"]
    for name in names:
        queue_message(db, settings, ARABIC / f"{name}.wav", f"u-{name}")
    # Each pass waits for the other: only two batches in hand at once get past it.
    together = threading.Barrier(2, timeout=30)
    batches = Batches(settings, during=together.wait)
    worker = TranscriptionWorker(db, settings, idle_seconds=0.05, batch_transcriber=batches)
    drain(worker, db, len(names))
    assert not together.broken
    assert batches.sizes == [2, 2]
    assert (worker.stats.done, worker.stats.batches) == (4, 2)


@pytest.mark.parametrize(("asked", "passes"), [(None, 2), (3, 3)])
def test_the_servers_worker_runs_the_passes_asked_for_each_with_its_replica(
    db: Database, settings: Settings, asked: int | None, passes: int
) -> None:
    settings.transcription.concurrency = 2  # as the setting's default on 2 cores
    settings.transcription.stream_messages = False
    (worker,) = transcription_components(db, settings, asked, None)
    assert isinstance(worker, TranscriptionWorker)
    # --concurrency sets the setting, which the model's replicas are loaded by, too.
    assert (len(worker._threads), settings.transcription.passes()) == (passes, passes)


def test_the_real_model_has_a_replica_per_pass(real_settings: TranscriptionSettings) -> None:
    # A pass waits for a free replica: one each, or the worker's threads would take turns.
    settings = real_settings.model_copy(update={"concurrency": 2, "cpu_threads": 1})
    assert load(settings).whisper.model.num_workers == 2


def renew(session: Session, job_id: int, worker: str, now: datetime) -> bool:
    return jobs.renew_lease(session, job_id, worker, jobs.QueuePolicy(lease_seconds=60), now)


def test_a_lease_lost_mid_batch_loses_that_job_only(db: Database, settings: Settings) -> None:
    settings.transcription.batch_size = 3
    for name in ["ar02", "ar03", "ar04"]:
        queue_message(db, settings, ARABIC / f"{name}.wav", f"u-{name}")
    policy = jobs.QueuePolicy(lease_seconds=60)

    def taken_over() -> None:
        # The second job's lease runs out (its renewals failed, say) and another worker claims it.
        with db.session() as session:
            held = session.exec(select(TranscriptionJob).order_by(col(TranscriptionJob.id))).all()
        later = utcnow() + timedelta(seconds=policy.lease_seconds + 1)
        for job in (held[0], held[2]):  # still renewed by their holder
            assert db.run(
                partial(renew, job_id=job.id or 0, worker=job.lease_owner or "", now=later)
            )
        stolen = db.run(lambda s: jobs.claim_jobs(s, "other", policy, later, 3))
        assert [job.id for job in stolen] == [held[1].id]

    worker = TranscriptionWorker(
        db,
        settings,
        policy=policy,
        idle_seconds=0.05,
        batch_transcriber=Batches(settings, during=taken_over),
    )
    worker.start()
    deadline = time.monotonic() + 60
    while worker.stats.done + worker.stats.lost_leases < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop()
    assert (worker.stats.done, worker.stats.lost_leases) == (2, 1)
    with db.session() as session:
        rows = session.exec(select(TranscriptionJob).order_by(col(TranscriptionJob.id))).all()
        stored = {t.recording_id for t in session.exec(select(Transcript))}
    assert [row.status for row in rows] == [JobStatus.DONE, JobStatus.RUNNING, JobStatus.DONE]
    assert rows[1].lease_owner == "other" and rows[1].recording_id not in stored
    assert drafts(db)["u-ar03"] == (DraftState.TRANSCRIBING, None)


def test_every_lease_in_a_batch_is_renewed_while_it_is_transcribed(
    db: Database, settings: Settings
) -> None:
    settings.transcription.batch_size = 3
    for name in ["ar02", "ar03", "ar04"]:
        queue_message(db, settings, ARABIC / f"{name}.wav", f"u-{name}")
    # A pass three leases long: without renewals a second worker would take every job over.
    policy = jobs.QueuePolicy(lease_seconds=0.6)
    rival_claims: list[int] = []
    passing = threading.Event()

    def rival() -> None:
        while not passing.is_set():
            claimed = db.run(lambda s: jobs.claim_jobs(s, "rival", policy, utcnow(), 3))
            rival_claims.extend(job.id or 0 for job in claimed)
            time.sleep(0.05)

    def slow_pass() -> None:
        watcher = threading.Thread(target=rival)
        watcher.start()
        time.sleep(3 * policy.lease_seconds)
        passing.set()
        watcher.join()

    worker = TranscriptionWorker(
        db,
        settings,
        policy=policy,
        idle_seconds=0.05,
        batch_transcriber=Batches(settings, slow_pass),
    )
    drain(worker, db, 3)
    assert rival_claims == []
    assert (worker.stats.done, worker.stats.lost_leases) == (3, 0)


@pytest.mark.slow
def test_the_real_model_gives_each_recording_of_a_batch_its_own_words(
    real_model: LoadedModel, real_settings: TranscriptionSettings
) -> None:
    clips = {clip["id"]: clip for clip in manifest()}
    names = ["ar01", "silence", "ar05", "corrupt", "noise", "ar10", "ar12", "music", "ar20", "ar30"]
    results = transcribe_batch(
        [ARABIC / clips[name]["file"] for name in names], real_settings, model=real_model
    )
    by_name = dict(zip(names, results, strict=True))
    assert isinstance(by_name.pop("corrupt"), AudioError)
    for quiet in ("silence", "noise", "music"):  # empty even among speech
        heard = by_name.pop(quiet)
        assert isinstance(heard, TranscriptResult) and heard.no_speech and heard.text == "", quiet
    for name, result in by_name.items():
        assert isinstance(result, TranscriptResult)
        own = cer([(clips[name]["text"], result.text)])
        # Each draft is nearest its own recording's words: none took a neighbour's.
        others = [cer([(clips[other]["text"], result.text)]) for other in by_name if other != name]
        assert own < min(others), (name, result.text)
        # Timings stay inside the recording (none strays into a neighbour's).
        assert all(0 <= s.start <= s.end <= result.duration for s in result.segments)
    # The shared pass is as accurate as one recording at a time (the bench measures it in full).
    alone = [
        transcribe(ARABIC / clips[name]["file"], real_settings, model=real_model)
        for name in by_name
    ]
    pairs = [
        (clips[name]["text"], r.text)
        for name, r in by_name.items()
        if isinstance(r, TranscriptResult)
    ]
    one_by_one_cer = cer(
        [(clips[name]["text"], r.text) for name, r in zip(by_name, alone, strict=True)]
    )
    assert cer(pairs) <= one_by_one_cer + 0.05
    json.dumps([r.segment_dicts() for r in by_name.values() if isinstance(r, TranscriptResult)])
