"""Callback assignment: 10,000 due callbacks, 100 equally eligible agents, two scheduler
processes against one database (PostgreSQL when the local server answers, else SQLite).

Prints callbacks assigned per second, the load spread (max - min per agent; target <= 1),
whether every callback was assigned exactly once, the time of the service's agent-load query
(callbacks.agent_loads) with every callback assigned, and the rate as a ratio of a baseline
measured in the same run: one bare UPDATE per batch doing the same writes without any policy.

    .venv/bin/python bench/assign.py [--callbacks N] [--agents N] [--sqlite]
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, text
from sqlmodel import Session, col, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from casebook import callbacks
from casebook.access import Actor
from casebook.db import Database, upgrade_database
from casebook.models import Agent, AuditEvent, Callback, CallbackReason, CallbackStatus
from casebook.settings import DatabaseSettings
from hotline.app.config import Settings

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # Sunday 10:00 in Tripoli: on shift, in window
LOAD_QUERY_REPEATS = 20


def pg_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        return False
    return True


def fresh_url(use_sqlite: bool) -> tuple[str, str | None]:
    if use_sqlite:
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db", None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with create_engine(PG).begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    return f"{PG}?options=-csearch_path%3D{schema}", schema


def fill(db: Database, agents: int, due: int, settings: Settings) -> None:
    def work(session: Session) -> None:
        session.exec(text("DELETE FROM callback"))  # type: ignore[call-overload]
        for n in range(agents):
            session.add(
                Agent(
                    username=f"agent{n:03d}",
                    display_name=f"Agent {n}",
                    roles=["agent"],
                    department="customer-care",
                    languages=["ar"],
                    capacity=10 * due,
                )
            )
        session.flush()
        session.add_all(
            Callback(
                phone_number=f"09{n:08d}",
                reason=CallbackReason.FOLLOW_UP.value,
                department="customer-care",
                due_from=NOW - timedelta(seconds=n % 600),
                overdue_at=NOW + timedelta(days=2),
            )
            for n in range(due)
        )

    db.run(work)
    del settings


def reset(db: Database) -> None:
    db.run(
        lambda s: s.exec(
            text(  # type: ignore[call-overload]
                "UPDATE callback SET status = 'pending', assigned_agent_id = NULL,"
                " assigned_at = NULL"
            )
        )
    )


def baseline(db: Database, agents: int, batch: int) -> float:
    """The same writes, no policy: number pending callbacks and give them out round-robin."""
    started = time.perf_counter()
    total = 0
    while True:

        def work(session: Session) -> int:
            ids = session.exec(
                select(Callback.id)
                .where(Callback.status == CallbackStatus.PENDING.value)
                .order_by(col(Callback.id))
                .limit(batch)
            ).all()
            agent_ids = session.exec(select(Agent.id).order_by(col(Agent.id))).all()
            for position, callback_id in enumerate(ids):
                session.exec(
                    text(  # type: ignore[call-overload]
                        "UPDATE callback SET status = 'assigned', assigned_agent_id = :agent"
                        " WHERE id = :id"
                    ).bindparams(agent=agent_ids[position % agents], id=callback_id)
                )
            return len(ids)

        done = db.run(work)
        total += done
        if done == 0:
            break
    return total / (time.perf_counter() - started)


def scheduler(url: str, batch: int, report: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    settings = Settings()
    db = Database(DatabaseSettings(url=url, retry_seconds=60), migrate=False)
    actor = Actor.system("scheduler")
    assigned = 0
    while True:
        run = db.run(lambda s: callbacks.assign_due_callbacks(s, settings, actor, NOW, batch=batch))
        assigned += len(run.assigned)
        if not run.assigned:
            break
    report.put(assigned)
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--callbacks", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--sqlite", action="store_true", help="use SQLite even if PostgreSQL answers"
    )
    args = parser.parse_args()
    use_sqlite = args.sqlite or not pg_answers()
    url, schema = fresh_url(use_sqlite)
    settings = Settings()
    settings.callbacks.agent_capacity = 10 * args.callbacks
    # On PostgreSQL only the owner migrates (here one role, the superuser, is both).
    upgrade_database(DatabaseSettings(url=url, retry_seconds=60))
    db = Database(DatabaseSettings(url=url, retry_seconds=60), create=True)
    fill(db, args.agents, args.callbacks, settings)

    base_rate = baseline(db, args.agents, args.batch)
    reset(db)

    context = multiprocessing.get_context("spawn")
    report: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [context.Process(target=scheduler, args=(url, args.batch, report)) for _ in range(2)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    per_process = [report.get(timeout=1800) for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started

    with db.session() as session:
        # The service's own query, the one every assignment run starts with, timed at full load.
        timings = []
        for _ in range(LOAD_QUERY_REPEATS):
            began = time.perf_counter()
            loads = callbacks.agent_loads(session)
            timings.append(time.perf_counter() - began)
        pending = session.exec(
            select(func.count())
            .select_from(Callback)
            .where(Callback.status == CallbackStatus.PENDING.value)
        ).one()
        per_callback = Counter(
            session.exec(
                select(AuditEvent.object_id).where(AuditEvent.action == "callback.assign")
            ).all()
        )
    once = (
        len(per_callback) == args.callbacks and set(per_callback.values()) == {1} and pending == 0
    )
    rate = args.callbacks / elapsed
    spread = max(loads.values()) - min(loads.get(a, 0) for a in range(1, args.agents + 1))
    backend = "SQLite" if use_sqlite else "PostgreSQL"
    setup = f"{args.callbacks} callbacks, {args.agents} agents, 2 schedulers, {backend}"
    print(f"callback assignment: {setup}")
    print(f"{'figure':<34}{'value':>14}")
    print(f"{'baseline (bare UPDATEs) /s':<34}{base_rate:>14.0f}")
    print(f"{'assigned /s (2 schedulers)':<34}{rate:>14.0f}")
    print(f"{'ratio assigned / baseline':<34}{rate / base_rate:>14.2f}")
    print(f"{'per scheduler':<34}{per_process!s:>14}")
    print(f"{'load spread (max - min)':<34}{spread:>14}")
    print(f"{'agent loads query (median ms)':<34}{statistics.median(timings) * 1000:>14.2f}")
    print(f"{'every callback assigned once':<34}{once!s:>14}")
    db.dispose()
    if schema is not None:
        with create_engine(PG).begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    if not once or spread > 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
