"""Drain time of a burst of queued messages: one job per model pass (the worker before batching)
against the batched worker (``transcription.batch_size`` jobs per pass, their speech packed into
shared Whisper windows), in the same run, with the same loaded model.

    .venv/bin/python bench/drain.py [--count 100] [--batch-size 8] [--threads N]

Each path gets a fresh SQLite casebook with ``--count`` complaints registered and their
messages queued (the speech clips of tests/data/arabic, repeated), then the real
``TranscriptionWorker`` runs until every job is done. Printed per path: wall-clock drain time,
this process's CPU seconds (which other load on the machine does not inflate), drafts per
minute, and CER of the stored drafts against the clips' references; then the batched/one-at-a-time
ratios (target <= 0.5) and the CER difference (target within 0.02).

The IVR must not be starved meanwhile: ``--ivr-calls`` complaints are phoned in through the real
FastAGI server (the PBX simulator's Asterisk end, answering at once) on the same casebook and in
the same process as the worker, as ``hotline serve`` runs them, with the site idle and then during
each drain; printed is the time from the caller's ``#`` (the end of the recorded message) to the
IVR's next prompt (the complaint registered, its message stored and queued), p50 and p95.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from sqlmodel import Session, col, select  # noqa: E402

from casebook import cases, jobs, site_secrets  # noqa: E402
from casebook.access import Actor  # noqa: E402
from casebook.clock import utcnow  # noqa: E402
from casebook.db import Database  # noqa: E402
from casebook.models import Case, JobStatus, RecordingKind, TranscriptionJob  # noqa: E402
from hotline.app.config import Settings  # noqa: E402
from hotline.simulator.agi_peer import AgiPeer, Caller, Take  # noqa: E402
from hotline.simulator.audio import caller_voice  # noqa: E402
from ivr_flows.casebook_backend import CasebookBackend  # noqa: E402
from ivr_flows.server import AgiServer  # noqa: E402
from recordings.ingest import ingest_recording  # noqa: E402
from transcription.metrics import cer  # noqa: E402
from transcription.model import LoadedModel, load  # noqa: E402
from transcription.pipeline import transcribe, transcribe_batch  # noqa: E402
from transcription.settings import TranscriptionSettings  # noqa: E402
from transcription.worker import TranscriptionWorker  # noqa: E402

DATA = ROOT / "tests" / "data" / "arabic"
IVR = Actor.system("ivr")


def site(folder: Path, threads: int | None, batch_size: int) -> tuple[Settings, Database]:
    settings = Settings()
    settings.database.url = f"sqlite:///{folder / 'hotline.db'}"
    settings.recordings.root = folder / "recordings"
    settings.secrets.folder = folder / "secrets"
    settings.transcription.cpu_threads = threads
    settings.transcription.batch_size = batch_size
    site_secrets.create_site_keys(settings.secrets)
    return settings, Database(settings.database, create=True)


def queue(db: Database, settings: Settings, clips: list[dict[str, str]]) -> dict[str, str]:
    """The burst: one complaint per clip, its message queued. Returns uniqueid -> reference text."""
    settings.recordings.root.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    for number, clip in enumerate(clips):
        uniqueid = f"burst-{number}"
        message = settings.recordings.root / f"message-{uniqueid}.wav"
        shutil.copyfile(DATA / clip["file"], message)

        def work(session: Session, uniqueid: str = uniqueid, message: Path = message) -> None:
            case = cases.register_complaint(
                session, settings, IVR, caller_number="0910000001", uniqueid=uniqueid
            )
            recording = ingest_recording(
                session,
                IVR,
                str(message),
                kind=RecordingKind.MESSAGE,
                root=settings.recordings.root,
                case_id=case.id,
            )
            assert recording is not None
            jobs.enqueue_transcription(session, IVR, recording, utcnow())

        db.run(work)
        expected[uniqueid] = clip["text"]
    return expected


PROMPTS = ("STREAM FILE", "GET DATA", "SAY DIGITS")


def hash_to_prompt(server: AgiServer, calls: int, first: int) -> list[float]:
    """Seconds from each caller's ``#`` ending the message to the IVR's next prompt."""
    delays: list[float] = []
    for number in range(first, first + calls):
        marks: list[tuple[str, float]] = []
        caller = Caller(
            uniqueid=f"1763900000.{number}",
            linkedid=f"1763900001.{number}",
            keys=["1", "1"],
            takes=[Take("dtmf", caller_voice(None))],
        )

        def observe(command: str, _reply: bytes, marks: list[tuple[str, float]] = marks) -> None:
            marks.append((command, time.perf_counter()))

        AgiPeer(server.address, caller, observe=observe).run()
        hashed = next(at for command, at in marks if command.startswith("RECORD FILE"))
        delays.append(
            next(at for command, at in marks if at > hashed and command.startswith(PROMPTS))
            - hashed
        )
    return delays


def percentiles(delays: list[float]) -> tuple[float, float]:
    ordered = sorted(delays)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def open_jobs(db: Database) -> int:
    with db.session() as session:
        return len(
            session.exec(
                select(TranscriptionJob).where(
                    col(TranscriptionJob.status).in_([JobStatus.QUEUED, JobStatus.RUNNING])
                )
            ).all()
        )


def drain(
    worker: TranscriptionWorker, db: Database, count: int, ivr: AgiServer, calls: int
) -> tuple[float, float, int, list[float]]:
    """Wall-clock and CPU seconds and model passes until the burst's ``count`` jobs are done
    (claimed in order, before the IVR's calls' own, drained after), and the IVR's delays."""
    wall, cpu = time.perf_counter(), time.process_time()
    worker.start()
    time.sleep(1.0)  # the first model pass under way
    delays = hash_to_prompt(ivr, calls, first=count + calls) if calls else []
    while worker.stats.done + worker.stats.failed < count:
        time.sleep(0.2)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    passes = worker.stats.batches
    while open_jobs(db):  # the IVR's calls' own
        time.sleep(0.2)
    worker.stop()
    assert worker.stats.failed == 0, "every message must get its draft"
    return wall, cpu, passes, delays


def run(
    name: str,
    model: LoadedModel,
    clips: list[dict[str, str]],
    threads: int | None,
    batch_size: int,
    calls: int,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"drain-{name}-") as folder:
        settings, db = site(Path(folder), threads, batch_size)
        expected = queue(db, settings, clips)
        settings.agi.command_timeout = 10.0
        ivr = AgiServer(settings, CasebookBackend(db, settings), port=0)
        options = settings.transcription
        if name == "one-at-a-time":
            worker = TranscriptionWorker(
                db,
                settings,
                idle_seconds=0.1,
                transcriber=partial(transcribe, settings=options, model=model),
            )
        else:
            worker = TranscriptionWorker(
                db,
                settings,
                idle_seconds=0.1,
                batch_transcriber=partial(transcribe_batch, settings=options, model=model),
            )
        with ivr:
            idle = hash_to_prompt(ivr, calls, first=len(clips)) if calls else []
            wall, cpu, passes, busy = drain(worker, db, len(clips), ivr, calls)
        with db.session() as session:
            drafts = {c.call_uniqueid: c.draft_text or "" for c in session.exec(select(Case))}
        db.dispose()
    pairs = [(text, drafts[uniqueid]) for uniqueid, text in expected.items()]
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "drafts_per_minute": 60 * len(clips) / wall,
        "cer": cer(pairs),
        "passes": passes,
        "ivr_idle_p50_p95": percentiles(idle) if idle else (0.0, 0.0),
        "ivr_draining_p50_p95": percentiles(busy) if busy else (0.0, 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="messages in the burst")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=TranscriptionSettings().batch_size,
        help="jobs per model pass (default: transcription.batch_size)",
    )
    parser.add_argument(
        "--threads", type=int, help="CTranslate2 threads (default: transcription.cpu_threads)"
    )
    parser.add_argument(
        "--ivr-calls",
        type=int,
        default=20,
        help="complaints phoned in idle, then during each drain",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    speech = [clip for clip in manifest if clip["kind"] == "speech"]
    clips = [speech[n % len(speech)] for n in range(args.count)]
    settings, _ = site(Path(tempfile.mkdtemp(prefix="drain-model-")), args.threads, args.batch_size)
    settings.transcription.cache_dir = ROOT / "var" / "models"  # assembled once, kept
    model = load(settings.transcription)
    transcribe(DATA / speech[0]["file"], settings.transcription, model=model)  # warm-up
    load_before = os.getloadavg()[0]
    results = {
        name: run(name, model, clips, args.threads, args.batch_size, args.ivr_calls)
        for name in ("one-at-a-time", "batched")
    }
    single, batched = results["one-at-a-time"], results["batched"]
    summary = {
        "count": args.count,
        "threads": settings.transcription.threads(),
        "batch_size": args.batch_size,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        **results,
        "ratio": batched["seconds"] / single["seconds"],
        "cpu_ratio": batched["cpu_seconds"] / single["cpu_seconds"],
        "cer_difference": batched["cer"] - single["cer"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"{args.count} messages, {summary['threads']} CTranslate2 threads, "
        f"batch {args.batch_size}, "
        f"load average {load_before:.1f} -> {summary['load_average_after']:.1f}"
    )
    for name, result in results.items():
        print(
            f"{name:>14}: drain {result['seconds']:7.1f} s  cpu {result['cpu_seconds']:7.1f} s  "
            f"{result['drafts_per_minute']:5.1f} drafts/min  {result['passes']:4d} passes  "
            f"CER {result['cer']:.3f}"
        )
        idle_p50, idle_p95 = result["ivr_idle_p50_p95"]
        busy_p50, busy_p95 = result["ivr_draining_p50_p95"]
        print(
            f"{'':>16}IVR # to next prompt, p50 / p95: idle {idle_p50:.3f} / {idle_p95:.3f} s, "
            f"draining {busy_p50:.3f} / {busy_p95:.3f} s (target p95 < 1 s)"
        )
    print(
        f"ratio batched/one-at-a-time: wall {summary['ratio']:.2f}, cpu {summary['cpu_ratio']:.2f} "
        f"(target <= 0.5); CER difference {summary['cer_difference']:+.3f} (target within 0.02)"
    )


if __name__ == "__main__":
    main()
