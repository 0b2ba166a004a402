"""The transcription worker: claims jobs from the casebook's queue, up to
``transcription.batch_size`` at a time, transcribes their recordings together
(``pipeline.transcribe_batch``: one model pass for several messages) and hands each draft back.
Several workers, on several machines, share one queue: each job is leased, the leases of all the
jobs in hand renewed while Whisper runs, and each result is stored only by the worker still
holding that job's lease (see casebook.jobs). A bad recording fails its own job only. Killing a
worker mid-batch loses nothing: the leases run out and another worker takes the jobs over."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from casebook import jobs
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import TranscriptionJob
from transcription.audio import AudioError
from transcription.model import ModelError
from transcription.pipeline import transcribe_batch
from transcription.result import TranscriptResult
from transcription.settings import TranscriptionConfig

log = logging.getLogger(__name__)

WORKER = Actor.system("worker")


def transcript_data(result: TranscriptResult) -> jobs.TranscriptData:
    return jobs.TranscriptData(
        text=result.text,
        model_name=result.model_name,
        model_sha256=result.model_sha256,
        language=result.language,
        language_probability=result.language_probability,
        audio_seconds=result.duration,
        processing_seconds=result.processing_seconds,
        no_speech=result.no_speech,
        segments=result.segment_dicts(),
        avg_logprob=result.avg_logprob,
        no_speech_prob=result.no_speech_prob,
    )


@dataclass
class WorkerStats:
    done: int = 0
    failed: int = 0
    lost_leases: int = 0
    busy: int = 0  # jobs being transcribed right now
    batches: int = 0  # model passes (one per batch of jobs claimed together)


# One recording at a time (e.g. streaming transcription): raises AudioError for a bad recording.
Transcriber = Callable[[Path], TranscriptResult]
# Several recordings together: each one's result, or its AudioError, in its place.
BatchTranscriber = Callable[[Sequence[Path]], list[TranscriptResult | AudioError]]


def one_by_one(transcriber: Transcriber) -> BatchTranscriber:
    """A one-recording transcriber used where the worker hands over a batch."""

    def run(paths: Sequence[Path]) -> list[TranscriptResult | AudioError]:
        results: list[TranscriptResult | AudioError] = []
        for path in paths:
            try:
                results.append(transcriber(path))
            except AudioError as exc:
                results.append(exc)
        return results

    return run


class TranscriptionWorker:
    """``concurrency`` threads (default ``transcription.concurrency``: one per core), each
    claiming a batch of jobs and transcribing them together, the model's passes side by side.

    ``transcriber`` replaces the batched pipeline by a one-recording transcriber (the worker
    then claims one job at a time); ``batch_transcriber`` replaces it by another batched one.
    """

    name = "worker"

    def __init__(
        self,
        db: Database,
        settings: TranscriptionConfig,
        *,
        concurrency: int | None = None,
        policy: jobs.QueuePolicy | None = None,
        idle_seconds: float = 2.0,
        transcriber: Transcriber | None = None,
        batch_transcriber: BatchTranscriber | None = None,
        on_done: Callable[[TranscriptionWorker, TranscriptionJob], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.policy = policy or jobs.QueuePolicy(
            lease_seconds=settings.transcription.job_lease_seconds,
            max_attempts=settings.transcription.job_max_attempts,
            retry_delay_seconds=settings.transcription.job_retry_seconds,
        )
        self.idle_seconds = idle_seconds
        self.stats = WorkerStats()
        self.fatal: ModelError | None = None
        if transcriber is not None:
            self._transcribe: BatchTranscriber = one_by_one(transcriber)
            self.batch_size = 1
        else:
            self._transcribe = batch_transcriber or partial(
                transcribe_batch, settings=settings.transcription
            )
            self.batch_size = settings.transcription.batch_size
        self._on_done = on_done
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(n,), name=f"worker-{n}", daemon=True)
            for n in range(concurrency or settings.transcription.passes())
        ]

    def start(self) -> None:
        log.info(
            "transcription worker: %d thread(s), up to %d jobs per model pass, %d CTranslate2 "
            "threads each",
            len(self._threads),
            self.batch_size,
            self.settings.transcription.threads(),
        )
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Finish the jobs in hand, claim no more."""
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def state(self) -> dict[str, Any]:
        return {"busy": self.stats.busy, "done": self.stats.done, "failed": self.stats.failed}

    def _loop(self, number: int) -> None:
        me = f"{socket.gethostname()}:{os.getpid()}:{number}"
        while not self._stop.is_set():
            batch = self.db.run(
                lambda session: jobs.claim_jobs(session, me, self.policy, utcnow(), self.batch_size)
            )
            if not batch:
                self._stop.wait(self.idle_seconds)
                continue
            try:
                self._work(batch, me)
            except ModelError as exc:
                # Nothing can be transcribed on this machine: stop and say why, loudly.
                self.fatal = exc
                log.error("transcription stopped: %s", exc)
                self._stop.set()
            except Exception as exc:
                # Unexpected (a bug): the batch is retried later, the thread goes on.
                log.exception("jobs %s failed unexpectedly", [job.id for job in batch])
                for job in batch:
                    self._give_back(job, me, f"{type(exc).__name__}: {exc}")

    def _work(self, batch: list[TranscriptionJob], me: str) -> None:
        paths = self.db.run(
            lambda session: [Path(jobs.recording_of(session, job).path) for job in batch]
        )
        renewing = threading.Event()
        ids = sorted(job.id or 0 for job in batch)  # one locking order for every worker
        renewer = threading.Thread(target=self._renew, args=(ids, me, renewing), daemon=True)
        renewer.start()
        self._count("busy", len(batch))
        try:
            results = self._transcribe(paths)
        except ModelError:
            for job in batch:
                self._give_back(job, me, "model unavailable")
            raise
        finally:
            renewing.set()
            renewer.join()
            self._count("busy", -len(batch))
        self._count("batches")
        for job, result in zip(batch, results, strict=True):
            try:
                self._store(job, me, result)
            except Exception as exc:
                # Unexpected (a full disk): this job is retried later, its batch-mates are kept.
                log.exception("job %s failed unexpectedly", job.id)
                self._give_back(job, me, f"{type(exc).__name__}: {exc}")

    def _store(self, job: TranscriptionJob, me: str, result: TranscriptResult | AudioError) -> None:
        """One job's outcome, written only while this worker holds its lease."""
        job_id = job.id or 0
        if isinstance(result, AudioError):
            reason = str(result)
            log.warning("job %s: %s", job_id, reason)
            failed = self.db.run(
                lambda session: jobs.fail_job(
                    session, job_id, me, reason, self.policy, utcnow(), permanent=True
                )
            )
            if failed is None:
                log.warning("job %s: lease lost to another worker", job_id)
                self._count("lost_leases")
                return
            self._count("failed")
        else:
            data = transcript_data(result)
            stored = self.db.run(
                lambda session: jobs.finish_job(session, WORKER, job_id, me, data, utcnow())
            )
            if stored is None:
                log.warning("job %s: lease lost to another worker; its result is kept", job_id)
                self._count("lost_leases")
                return
            self._count("done")
            log.info(
                "job %s: %.1f s of audio in %.1f s%s",
                job_id,
                result.duration,
                result.processing_seconds,
                " (no speech)" if result.no_speech else "",
            )
        if self._on_done is not None:
            self._on_done(self, job)

    def _give_back(self, job: TranscriptionJob, me: str, error: str) -> None:
        """A failed attempt that is not the recording's fault: retried after a delay."""
        job_id = job.id or 0
        self.db.run(
            lambda session: jobs.fail_job(
                session, job_id, me, error, self.policy, utcnow(), permanent=False
            )
        )

    def _renew(self, job_ids: list[int], me: str, done: threading.Event) -> None:
        # A third of the lease: two renewals may fail (database busy) before anyone takes over.
        # A job whose lease is lost is skipped by renew_lease; its batch-mates are still renewed.
        while not done.wait(self.policy.lease_seconds / 3):
            self.db.run(
                lambda session: [
                    jobs.renew_lease(session, job_id, me, self.policy, utcnow())
                    for job_id in job_ids
                ]
            )

    def _count(self, what: str, by: int = 1) -> None:
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + by)
