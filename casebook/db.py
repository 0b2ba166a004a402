"""The database: one engine factory for SQLite (a file) and PostgreSQL (by URL), migrations, and
units of work that ride out a database that is locked or gone for a moment.

SQLite is one file: any process that opens it brings the schema up to date. PostgreSQL has two
roles (casebook/roles.py): the owner migrates (``upgrade_database``, with
``database.owner_url``), the runtime role every other process connects as never does: opened
on a schema that is not current, the database says to run ``hotline db upgrade``.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

from casebook import audit, pg_locks, roles
from casebook.errors import AccessDenied, CasebookError, Conflict, DatabaseUnavailable
from casebook.models import AuditEvent
from casebook.retry import Backoff, retry_call
from casebook.settings import DatabaseSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (absolute), or None for PostgreSQL and in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database).absolute()


def create_db_engine(settings: DatabaseSettings, *, create: bool = False) -> Engine:
    url = settings.url
    if url.startswith("sqlite"):
        return _sqlite_engine(url, settings.sqlite_busy_timeout_ms, create=create)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # pre_ping replaces connections the server dropped (restart, failover) before they are used.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def _sqlite_engine(url: str, busy_timeout_ms: int, *, create: bool) -> Engine:
    path = sqlite_file(url)
    if path is None:
        engine = create_engine(url, connect_args={"check_same_thread": False})
    else:
        # mode=rw: a file that is not there is an error, never a new empty database. Only
        # ``create`` makes one, once, here: a site whose file is deleted later must not come
        # back empty.
        file_uri = f"file:{quote(str(path))}"
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            sqlite3.connect(f"{file_uri}?mode=rwc", uri=True).close()
        uri = f"{file_uri}?mode=rw"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, check_same_thread=False)

        engine = create_engine(url, creator=connect)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" below decide when transactions start (pysqlite would
        # otherwise open them lazily and deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()
        if path is not None:
            record.info["file_id"] = _file_id(path)

    if path is not None:

        @event.listens_for(engine, "checkout")
        def _same_file(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
            # An open connection keeps a deleted or replaced file alive: it would read the old
            # data, and writes fail as "readonly". The pool drops it and connects again, which
            # fails while the file is missing (retried, see _is_transient).
            if record.info.get("file_id") != _file_id(path):
                raise DisconnectionError(f"database file {path} was deleted or replaced")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes fails with SQLITE_BUSY at once instead of waiting for busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _alembic_config(connection: Connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


class NotServable(DatabaseUnavailable):
    """The database answers but cannot be used as it is; the message says what to run."""


class SchemaNotCurrent(NotServable):
    """PostgreSQL: the schema is not at this code's revision, and only the owner migrates."""


class PrivilegesMissing(NotServable):
    """PostgreSQL: the connected role may not use the site's schema (never granted)."""


def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS_DIR))


def code_revision() -> str:
    """The newest migration this code has: the revision the schema must be at."""
    head = _scripts().get_current_head()
    assert head is not None, "casebook/migrations has no revisions"
    return head


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_is_current(engine: Engine) -> bool:
    return schema_revision(engine) == code_revision()


def upgrade_schema(engine: Engine, *, runtime_role: str | None = None) -> bool:
    """Bring the schema to the newest migration; safe when several processes start at once.
    On PostgreSQL, run as the owner: ``runtime_role`` (when given and it exists) then gets its
    privileges on every table in the same transaction, a new table included. True when
    ``runtime_role`` was granted."""
    with engine.begin() as connection:
        if is_sqlite(engine):
            command.upgrade(_alembic_config(connection), "head")
            return False
        # Held to the end of the transaction; SQLite is already serialised by BEGIN IMMEDIATE.
        pg_locks.lock_in_this_schema(connection, pg_locks.MIGRATION)
        command.upgrade(_alembic_config(connection), "head")
        if runtime_role is None or not roles.role_exists(connection, runtime_role):
            return False
        roles.apply(connection, runtime_role)
        return True


def owner_settings(settings: DatabaseSettings) -> DatabaseSettings:
    """What the owner connects with: ``database.owner_url`` when set (PostgreSQL), else the
    one URL of a site with one role (and of every SQLite site)."""
    if settings.owner_url is None:
        return settings
    return settings.model_copy(update={"url": settings.owner_url, "owner_url": None})


def runtime_role(settings: DatabaseSettings) -> str | None:
    """The role the server connects as, when the site has two (``database.owner_url`` set):
    ``database.url``'s user. None for one role, for SQLite, and for a URL without a user."""
    if settings.owner_url is None:
        return None
    runtime = make_url(settings.url).username
    return runtime if runtime and runtime != make_url(settings.owner_url).username else None


@dataclass(frozen=True)
class Upgraded:
    """What `hotline db upgrade` did."""

    url: str  # where, without a password
    revision: str
    # The runtime role (database.url's user) and whether it got its privileges.
    runtime_role: str | None
    granted: bool


def upgrade_database(settings: DatabaseSettings) -> Upgraded:
    """Create (SQLite) or upgrade the schema as the owner, and on PostgreSQL grant the runtime
    role what casebook/roles.py says in the same transaction."""
    owner = Database(owner_settings(settings), migrate=False, create=True)
    role = runtime_role(settings)
    try:
        granted = owner.retrying(lambda: upgrade_schema(owner.engine, runtime_role=role))
        return Upgraded(owner.safe_url, code_revision(), role, granted)
    finally:
        owner.dispose()


def _is_transient(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    message = str(exc.orig).lower()
    transient = (
        "database is locked",
        "database is busy",
        "could not connect",
        "connection refused",
        "server closed the connection",
        "terminating connection",
        "connection timeout",
        "the database system is starting up",
        "the database system is shutting down",
        "consuming input failed",
        "connection is closed",
        # PostgreSQL aborts one of two transactions waiting on each other (e.g. on the audit
        # chain's lock and a row lock); running it again is the documented remedy.
        "deadlock detected",
        # The SQLite file is gone (deleted, or moved away while being replaced): a restored
        # file is picked up by the next try; past the window the error names the file.
        "unable to open database file",
        # Written through a connection opened before the file was deleted or replaced.
        "attempt to write a readonly database",
    )
    return any(phrase in message for phrase in transient)


_STALE_TABLE = re.compile(r"table '(\w+)'")
_RECORD_NAMES = {"complaint_case": "a case", "callback": "a callback"}


def _stale_subject(message: str) -> str:
    """What a StaleDataError's message says was changed meanwhile, as people call it."""
    found = _STALE_TABLE.search(message)
    table = found.group(1) if found else ""
    return _RECORD_NAMES.get(table, f"a {table or 'record'} row")


class Database:
    """An engine with its session factory; ``run`` is the unit of work every service uses."""

    def __init__(
        self, settings: DatabaseSettings, *, migrate: bool = True, create: bool = False
    ) -> None:
        """``create``: a SQLite file that does not exist is made (``hotline db upgrade``, the
        demo, tests). Without it a missing file is an error: a site whose database is gone
        must never carry on as a new empty site."""
        self.settings = settings
        self.sqlite_file = sqlite_file(settings.url)
        if self.sqlite_file is not None and not create and not self.sqlite_file.exists():
            raise DatabaseUnavailable(
                f"database file {self.sqlite_file} does not exist: "
                "create it with hotline db upgrade"
            )
        self.safe_url = make_url(settings.url).render_as_string(hide_password=True)
        self.engine = create_db_engine(settings, create=create)
        self._sessions = sessionmaker(self.engine, class_=Session, expire_on_commit=False)
        if migrate:
            self.retrying(self._ensure_schema)

    def sign_audit_checkpoints(self, signer: audit.CheckpointSigner) -> None:
        """This process holds the site's audit key (the server): every session it opens from
        now on signs a checkpoint every ``signer.every`` audit entries (casebook.audit)."""
        self._sessions.configure(info={audit.SIGNER: signer})

    def _ensure_schema(self) -> None:
        current = schema_revision(self.engine)
        if current == code_revision():
            return
        if is_sqlite(self.engine):
            upgrade_schema(self.engine)
            return
        if current is None:
            # A schema the role may not use is not on its search_path: it looks empty.
            with self.engine.connect() as connection:
                unusable = roles.unusable_schemas(connection)
            if unusable:
                raise PrivilegesMissing(
                    f"database {self.safe_url}: this role may not use schema {unusable[0]} "
                    "(never granted): as the owner, run hotline db upgrade and "
                    "hotline db roles --apply"
                )
        raise SchemaNotCurrent(self._not_current(current))

    def _not_current(self, current: str | None) -> str:
        upgrade = "run hotline db upgrade (it migrates as the owner, database.owner_url)"
        if current is None:
            return f"database {self.safe_url} has no hotline schema: {upgrade}"
        if current not in {script.revision for script in _scripts().walk_revisions()}:
            return (
                f"database {self.safe_url} is at revision {current}, newer than this code "
                f"({code_revision()}): update the hotline on this machine"
            )
        return (
            f"database {self.safe_url} is at revision {current}, this code needs "
            f"{code_revision()}: {upgrade}"
        )

    def retrying(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` again while the database is locked or unreachable, up to the
        configured window; then fail with one clear ``DatabaseUnavailable``."""
        backoff = Backoff(initial=0.05, cap=2.0, deadline=self.settings.retry_seconds)
        try:
            return retry_call(
                operation,
                backoff,
                retryable=lambda exc: isinstance(exc, DBAPIError) and _is_transient(exc),
                on_retry=lambda exc, delay: log.warning(
                    "database busy or unreachable, retrying in %.2f s: %s",
                    delay,
                    getattr(exc, "orig", exc),
                ),
            )
        except DBAPIError as exc:
            if not _is_transient(exc):
                raise
            # Only a transient error past the deadline gets here.
            if self.sqlite_file is not None and not self.sqlite_file.exists():
                raise DatabaseUnavailable(
                    f"database file {self.sqlite_file} is missing (deleted or moved while in "
                    "use): restore it from a backup"
                ) from exc
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailable(
                f"database {self.safe_url} unavailable for "
                f"{self.settings.retry_seconds:g}s: {reason}"
            ) from exc

    def run(self, work: Callable[[Session], T]) -> T:
        """One transaction: commit when ``work`` returns, roll back when it raises; retried as
        a whole when the database is transiently unavailable, so nothing is half written."""

        def attempt() -> T:
            try:
                with self._sessions() as session, session.begin():
                    return work(session)
            except StaleDataError as exc:
                # A versioned row written over a change this work did not see (a path that did
                # not claim it, casebook.concurrency): refused whole, like any conflict.
                raise Conflict(_stale_subject(str(exc))) from exc

        try:
            return self.retrying(attempt)
        except CasebookError as refusal:
            event = refusal.audit_event if isinstance(refusal, AccessDenied) else None
            if isinstance(event, AuditEvent):
                self.retrying(lambda: self._append_audit(event))
            record = refusal.survives_rollback
            if record is not None:
                self.retrying(lambda: self._in_own_transaction(record))
            raise

    def _in_own_transaction(self, work: Callable[[Session], object]) -> None:
        with self._sessions() as session, session.begin():
            work(session)

    def _append_audit(self, event: AuditEvent) -> None:
        with self._sessions() as session, session.begin():
            # A fresh copy each attempt: a failed attempt leaves its object bound to a session.
            audit.append(session, AuditEvent.model_validate(event.model_dump()))

    def connected_owner(self) -> str | None:
        """PostgreSQL: the connected role when it has the owner's rights over the tables (a
        site with one role), None for a runtime role."""
        with self.engine.connect() as connection:
            return roles.connected_role_owns_tables(connection)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reads that need no retry (tests, interactive screens)."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
