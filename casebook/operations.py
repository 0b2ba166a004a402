"""How the running site is doing: component heartbeats and the figures `hotline status` shows
(live calls, transcription queue depth and oldest waiting job, callbacks due)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from casebook.models import (
    OPEN_CALLBACK_STATUSES,
    Callback,
    CallbackStatus,
    Heartbeat,
    JobStatus,
    TranscriptionJob,
)

# How often a running component reports; three missed reports mark it silent.
HEARTBEAT_SECONDS = 5.0
STALE_AFTER = timedelta(seconds=HEARTBEAT_SECONDS * 3)
# The component that assigns callbacks (hotline.app.components names it so).
SCHEDULER = "scheduler"


def beat(
    session: Session,
    component: str,
    instance: str,
    state: dict[str, Any],
    now: datetime,
    *,
    stopped: bool = False,
) -> None:
    """Record that ``component`` on ``instance`` is alive, with what it holds right now; or,
    ``stopped``, that it has just stopped cleanly, with what it held last."""
    row = session.exec(
        select(Heartbeat).where(Heartbeat.component == component, Heartbeat.instance == instance)
    ).first()
    if row is None:
        row = Heartbeat(component=component, instance=instance, started_at=now)
    row.seen_at = now
    row.state = state
    row.stopped_at = now if stopped else None
    session.add(row)


@dataclass(frozen=True)
class ComponentHealth:
    component: str
    instance: str
    seen_seconds_ago: float
    healthy: bool  # reported within ``stale_after`` and not stopped
    state: dict[str, Any]
    # When it stopped cleanly; None while it runs, or when it died without saying so (silent).
    stopped_at: datetime | None = None


def _healthy(row: Heartbeat, now: datetime, stale_after: timedelta) -> bool:
    """Reported within ``stale_after`` and not stopped."""
    return row.stopped_at is None and now - row.seen_at <= stale_after


@dataclass(frozen=True)
class ComponentSeen:
    running: bool  # some instance of it is healthy
    # Its last sign of life: the latest report of any instance (or its clean stop); None: never.
    seen_at: datetime | None


def component_seen(
    session: Session, component: str, now: datetime, stale_after: timedelta = STALE_AFTER
) -> ComponentSeen:
    rows = list(session.exec(select(Heartbeat).where(Heartbeat.component == component)))
    return ComponentSeen(
        running=any(_healthy(row, now, stale_after) for row in rows),
        seen_at=max((row.stopped_at or row.seen_at for row in rows), default=None),
    )


@dataclass(frozen=True)
class SiteStatus:
    components: list[ComponentHealth]
    live_calls: int
    queue_depth: int
    running_jobs: int
    failed_jobs: int
    oldest_queued_seconds: float | None
    callbacks_due: int
    callbacks_overdue: int
    callbacks_written: int


def site_status(
    session: Session, now: datetime, stale_after: timedelta = STALE_AFTER
) -> SiteStatus:
    components = [
        ComponentHealth(
            row.component,
            row.instance,
            (now - row.seen_at).total_seconds(),
            _healthy(row, now, stale_after),
            row.state,
            row.stopped_at,
        )
        for row in session.exec(
            select(Heartbeat).order_by(col(Heartbeat.component), col(Heartbeat.instance))
        )
    ]
    jobs = dict(
        session.exec(
            select(TranscriptionJob.status, func.count()).group_by(col(TranscriptionJob.status))
        ).all()
    )
    oldest = session.exec(
        select(func.min(TranscriptionJob.created_at)).where(
            TranscriptionJob.status == JobStatus.QUEUED.value
        )
    ).one()

    def count(*conditions: Any) -> int:
        return session.exec(select(func.count()).select_from(Callback).where(*conditions)).one()

    return SiteStatus(
        components=components,
        live_calls=sum(
            int(c.state.get("live_calls", 0))
            for c in components
            if c.component == "listener" and c.healthy
        ),
        queue_depth=jobs.get(JobStatus.QUEUED.value, 0),
        running_jobs=jobs.get(JobStatus.RUNNING.value, 0),
        failed_jobs=jobs.get(JobStatus.FAILED.value, 0),
        oldest_queued_seconds=(now - oldest).total_seconds() if oldest is not None else None,
        callbacks_due=count(
            col(Callback.status).in_(OPEN_CALLBACK_STATUSES), col(Callback.due_from) <= now
        ),
        callbacks_overdue=count(
            col(Callback.status).in_(OPEN_CALLBACK_STATUSES), col(Callback.overdue_at) < now
        ),
        callbacks_written=count(Callback.status == CallbackStatus.WRITTEN.value),
    )
