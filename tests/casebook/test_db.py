"""The database when things go wrong: locked, dropped, migrated by two processes at once."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel, select

from casebook import cases
from casebook.access import Actor
from casebook.db import Database, schema_is_current, upgrade_database
from casebook.errors import DatabaseUnavailable
from casebook.models import AuditEvent, Case
from casebook.settings import DatabaseSettings
from hotline.app.config import Settings
from tests.conftest import BACKENDS, use_pg_schema


def _register(db: Database, settings: Settings, uniqueid: str) -> Case:
    return db.run(
        lambda s: cases.register_complaint(
            s, settings, Actor.system("ivr"), caller_number="0910000001", uniqueid=uniqueid
        )
    )


def _sqlite_path(settings: Settings) -> str:
    return settings.database.url.removeprefix("sqlite:///")


def test_first_use_creates_the_schema(settings: Settings) -> None:
    database = Database(settings.database, create=True)
    assert schema_is_current(database.engine)
    assert Path(_sqlite_path(settings)).exists()


def test_a_missing_sqlite_file_is_an_error_not_a_new_site(settings: Settings) -> None:
    path = Path(_sqlite_path(settings))
    with pytest.raises(DatabaseUnavailable) as missing:
        Database(settings.database)
    assert str(missing.value) == (
        f"database file {path} does not exist: create it with hotline db upgrade"
    )
    assert not path.exists() and not path.parent.joinpath("hotline.db-wal").exists()


def _delete_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def test_a_database_deleted_under_a_running_process_fails_clearly_and_stays_gone(
    settings: Settings,
) -> None:
    settings.database.retry_seconds = 0.3
    database = Database(settings.database, create=True)
    _register(database, settings, "before")
    path = Path(_sqlite_path(settings))
    _delete_sqlite_files(path)
    with pytest.raises(DatabaseUnavailable, match=f"database file {path} is missing"):
        _register(database, settings, "after")
    with pytest.raises(DatabaseUnavailable, match="is missing"):
        database.run(lambda s: s.exec(select(Case)).all())
    assert not path.exists()


def test_a_database_file_restored_within_the_retry_window_is_used(settings: Settings) -> None:
    settings.database.retry_seconds = 60
    database = Database(settings.database, create=True)
    _register(database, settings, "before")
    path = Path(_sqlite_path(settings))
    backup = path.with_name("backup.db")
    with sqlite3.connect(path) as source, sqlite3.connect(backup) as copy:
        source.backup(copy)
    _delete_sqlite_files(path)
    retried = _FirstRetry()
    logging.getLogger("casebook.db").addHandler(retried)

    def restore_after_a_retry() -> None:
        retried.seen.wait(timeout=60)
        backup.rename(path)

    restorer = threading.Thread(target=restore_after_a_retry)
    restorer.start()
    try:
        _register(database, settings, "after")
    finally:
        restorer.join()
        logging.getLogger("casebook.db").removeHandler(retried)
    with database.session() as s:
        assert sorted(case.call_uniqueid or "" for case in s.exec(select(Case))) == [
            "after",
            "before",
        ]


class _FirstRetry(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.seen.set()


def test_a_briefly_locked_sqlite_database_is_waited_for(settings: Settings) -> None:
    settings.database.sqlite_busy_timeout_ms = 50  # so the retry loop, not SQLite, does the waiting
    settings.database.retry_seconds = 60
    database = Database(settings.database, create=True)
    locked = threading.Event()
    retried = _FirstRetry()
    logging.getLogger("casebook.db").addHandler(retried)

    def hold_lock_until_a_retry() -> None:
        blocker = sqlite3.connect(_sqlite_path(settings), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        locked.set()
        retried.seen.wait(timeout=60)
        blocker.execute("COMMIT")
        blocker.close()

    holder = threading.Thread(target=hold_lock_until_a_retry)
    holder.start()
    try:
        locked.wait(timeout=30)
        case = _register(database, settings, "u-locked")
    finally:
        holder.join()
        logging.getLogger("casebook.db").removeHandler(retried)
    assert retried.seen.is_set()
    assert case.reference is not None
    with database.session() as s:
        assert len(s.exec(select(Case)).all()) == 1


def test_a_database_locked_too_long_fails_clearly_and_writes_nothing(settings: Settings) -> None:
    settings.database.sqlite_busy_timeout_ms = 20
    settings.database.retry_seconds = 0.3
    database = Database(settings.database, create=True)
    blocker = sqlite3.connect(_sqlite_path(settings), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseUnavailable, match=r"unavailable for 0\.3s: database is locked"):
            _register(database, settings, "u-1")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with database.session() as s:
        assert s.exec(select(Case)).all() == []
        assert s.exec(select(AuditEvent)).all() == []


def test_an_unreachable_database_fails_clearly(settings: Settings) -> None:
    settings.database.url = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
    settings.database.retry_seconds = 0.2
    with pytest.raises(DatabaseUnavailable, match=r"unavailable for 0\.2s"):
        Database(settings.database)


@pytest.mark.pg
def test_postgresql_connections_killed_by_the_server_are_replaced(
    settings: Settings, pg_schema: str
) -> None:
    use_pg_schema(settings, pg_schema)
    db = Database(settings.database)
    _register(db, settings, "before")
    with db.engine.connect() as connection:
        own = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    # What a server restart or failover does to every pooled connection.
    killer = Database(settings.database, migrate=False)
    with killer.engine.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": own})
    killer.dispose()
    _register(db, settings, "after")
    with db.session() as s:
        assert len(s.exec(select(Case)).all()) == 2


def _open(database: DatabaseSettings, start: multiprocessing.synchronize.Event) -> None:
    start.wait(timeout=30)
    database.retry_seconds = 30
    if database.owner_url is None:  # SQLite: any process that opens the file migrates
        Database(database, create=True).dispose()
    else:  # PostgreSQL: only the owner does (`hotline db upgrade`)
        upgrade_database(database)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_starting_at_once_migrate_once(
    backend: str, settings: Settings, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        use_pg_schema(settings, request.getfixturevalue("pg_empty_schema"))
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_open, args=(settings.database, start)) for _ in range(3)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert schema_is_current(Database(settings.database, migrate=False).engine)


def test_the_migrations_build_exactly_the_tables_the_models_describe(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
