"""Two processes registering complaints at the same moment against one database."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from sqlmodel import Session, select

from casebook import cases
from casebook.access import Actor
from casebook.db import Database
from casebook.models import AuditEvent, Case
from casebook.reference import is_valid
from casebook.settings import DatabaseSettings
from hotline.app.config import Settings

PER_PROCESS = 60


def _register_many(
    url: str, secrets: Path, process: int, start: multiprocessing.synchronize.Event
) -> None:
    settings = Settings()
    settings.database = DatabaseSettings(url=url, retry_seconds=30)
    settings.secrets.folder = secrets  # the site's reference key: both number with it
    database = Database(settings.database)
    start.wait(timeout=30)
    ivr = Actor.system(f"ivr{process}")
    for n in range(PER_PROCESS):

        def register(s: Session, n: int = n) -> Case:
            return cases.register_complaint(
                s, settings, ivr, caller_number=f"09{process}{n:07d}", uniqueid=f"{process}.{n}"
            )

        database.run(register)
    database.dispose()


def test_references_from_two_processes_at_once_never_collide(
    db: Database, settings: Settings
) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    secrets = settings.secrets.folder
    workers = [
        context.Process(target=_register_many, args=(db.settings.url, secrets, p, start))
        for p in (1, 2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0

    with db.session() as s:
        references = [case.reference for case in s.exec(select(Case))]
        registered = s.exec(select(AuditEvent).where(AuditEvent.action == "case.register")).all()
    assert len(references) == 2 * PER_PROCESS
    assert len(set(references)) == len(references)
    assert all(ref is not None and is_valid(ref) for ref in references)
    assert len(registered) == 2 * PER_PROCESS
