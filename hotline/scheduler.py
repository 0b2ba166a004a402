"""`hotline scheduler`: APScheduler runs the casebook's periodic rules; the rules themselves live
in the casebook. Several schedulers may run against one database: each job is safe to run
twice at once (the assignment run takes a lock, see casebook.callbacks)."""

from __future__ import annotations

import logging
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler

from casebook import callbacks
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from hotline.config import Settings

log = logging.getLogger(__name__)

SCHEDULER = Actor.system("scheduler")


def assign_callbacks(db: Database, settings: Settings) -> None:
    run = db.run(
        lambda session: callbacks.assign_due_callbacks(session, settings, SCHEDULER, utcnow())
    )
    if run.assigned or run.escalated:
        log.info(
            "callbacks: %d assigned, %d overdue escalated, %d waiting",
            len(run.assigned),
            len(run.escalated),
            run.waiting,
        )


def build_scheduler(db: Database, settings: Settings) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC)
    # coalesce + max_instances=1: a slow run is never stacked with the next one.
    scheduler.add_job(
        assign_callbacks,
        "interval",
        args=(db, settings),
        seconds=settings.callbacks.assign_interval_seconds,
        next_run_time=utcnow(),
        id="assign-callbacks",
        coalesce=True,
        max_instances=1,
    )
    return scheduler
