"""The transcription worker: claims jobs from the casebook's queue, transcribes each recording
with the shipped model and hands the draft back. Several workers, on several machines, share one
queue: a job is leased, its lease renewed while Whisper runs, and a result is stored only by the
worker still holding the lease (see casebook.jobs). Killing a worker mid-job loses nothing: the
lease runs out and another worker takes the job over."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casebook import jobs
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import TranscriptionJob
from transcription.audio import AudioError
from transcription.model import ModelError
from transcription.pipeline import transcribe_recording
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
    busy: int = 0  # threads transcribing right now


Transcriber = Callable[[Path], TranscriptResult]


class TranscriptionWorker:
    """``concurrency`` threads, each claiming and transcribing one job at a time."""

    name = "worker"

    def __init__(
        self,
        db: Database,
        settings: TranscriptionConfig,
        *,
        concurrency: int = 1,
        policy: jobs.QueuePolicy | None = None,
        idle_seconds: float = 2.0,
        transcriber: Transcriber | None = None,
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
        self._transcribe = transcriber or (
            lambda path: transcribe_recording(path, settings.transcription)
        )
        self._on_done = on_done
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(n,), name=f"worker-{n}", daemon=True)
            for n in range(concurrency)
        ]

    def start(self) -> None:
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
            job = self.db.run(
                lambda session: jobs.claim_next_job(session, me, self.policy, utcnow())
            )
            if job is None:
                self._stop.wait(self.idle_seconds)
                continue
            try:
                self._work(job, me)
            except ModelError as exc:
                # Nothing can be transcribed on this machine: stop and say why, loudly.
                self.fatal = exc
                log.error("transcription stopped: %s", exc)
                self._stop.set()
            except Exception as exc:
                # Unexpected (a bug, a full disk): this job is retried later, the thread goes on.
                log.exception("job %s failed unexpectedly", job.id)
                self._give_back(job, me, f"{type(exc).__name__}: {exc}")

    def _work(self, job: TranscriptionJob, me: str) -> None:
        assert job.id is not None
        job_id = job.id
        path = Path(self.db.run(lambda session: jobs.recording_of(session, job).path))
        renewing = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(job_id, me, renewing), daemon=True)
        renewer.start()
        with self._lock:
            self.stats.busy += 1
        try:
            result = self._transcribe(path)
        except AudioError as exc:
            reason = str(exc)
            log.warning("job %s: %s", job_id, reason)
            self.db.run(
                lambda session: jobs.fail_job(
                    session, job_id, me, reason, self.policy, utcnow(), permanent=True
                )
            )
            self._count("failed")
            if self._on_done is not None:
                self._on_done(self, job)
            return
        except ModelError:
            self._give_back(job, me, "model unavailable")
            raise
        finally:
            renewing.set()
            renewer.join()
            with self._lock:
                self.stats.busy -= 1
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

    def _renew(self, job_id: int, me: str, done: threading.Event) -> None:
        # A third of the lease: two renewals may fail (database busy) before anyone takes over.
        while not done.wait(self.policy.lease_seconds / 3):
            self.db.run(
                lambda session: jobs.renew_lease(session, job_id, me, self.policy, utcnow())
            )

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)
