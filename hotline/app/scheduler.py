"""`hotline scheduler`: APScheduler runs the periodic rules (callback assignment, retention);
the rules themselves live in casebook/ and recordings/. Several schedulers may run against one
database: each job is safe to run twice at once (the assignment run takes a lock, see
casebook.callbacks; retention deletes each file once)."""

from __future__ import annotations

import logging
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler

from casebook import callbacks
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from hotline.app.config import Settings
from recordings import retention

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


def apply_retention(db: Database, settings: Settings) -> None:
    expired = db.run(
        lambda session: retention.apply_retention(
            session, settings, SCHEDULER, utcnow(), dry_run=False
        )
    )
    if expired:
        log.info(
            "retention: %d recordings past %d days deleted",
            len(expired),
            settings.retention.recordings_days,
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
    # Once a day, at night in the site's time zone, when nobody is listening to recordings.
    scheduler.add_job(
        apply_retention,
        "cron",
        args=(db, settings),
        hour=3,
        timezone=settings.business_hours.zone,
        id="retention",
        coalesce=True,
        max_instances=1,
    )
    return scheduler
