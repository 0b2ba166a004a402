"""Shared fixtures: settings in a temporary folder, and a real database per backend.

Every test that takes ``db`` runs against SQLite (a file) and, when ``HOTLINE_TEST_PG`` names a
PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432/test), against PostgreSQL too,
each test in a schema of its own, as a real site runs: the schema is created, owned and
migrated by an owner role, and ``db`` connects as a runtime role granted by casebook/roles.py
(``hotline db upgrade`` grants it). Both are roles of this test session (see ``PG_OWNER``);
``owner_db`` is the owner's connection, for tests that alter, migrate or tamper.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlmodel import Session

from casebook import agents, credentials, signin, site_secrets
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database, owner_settings, upgrade_database
from casebook.settings import DatabaseSettings
from hotline.app.config import Settings

PG_URL = os.environ.get("HOTLINE_TEST_PG", "")

# Real argon2id with the smallest parameters: the library's defaults cost ~0.1 s a hash, and
# every test site hashes one password per agent. Processes the tests start keep the defaults.
credentials.hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)]

# PostgreSQL roles are cluster-wide and other test runs may share the server: this session's
# are unique, made on first use (trust authentication on 127.0.0.1: no passwords) and dropped at
# the end. In the environment, so processes a test spawns name the same roles.
# Under pytest-xdist each worker is a session of its own, with roles of its own (a worker's
# processes inherit its PYTEST_XDIST_WORKER).
_ROLES_ID = os.environ.setdefault("HOTLINE_TEST_PG_ROLES", uuid.uuid4().hex[:10])
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
PG_OWNER = f"hl_owner_{_ROLES_ID}{_WORKER}"
PG_RUNTIME = f"hl_runtime_{_ROLES_ID}{_WORKER}"
_pg_roles_made: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        keep_shared_setups_on_one_worker(items)
    if PG_URL:
        return
    skip = pytest.mark.skip(reason="HOTLINE_TEST_PG is not set")
    for item in items:
        if "pg" in item.keywords:
            item.add_marker(skip)


def pg_url_as(role: str, schema: str | None = None) -> str:
    """The test server's URL as ``role`` (no password), its search_path ``schema``."""
    url = make_url(PG_URL).set(drivername="postgresql+psycopg", username=role)
    if schema is not None:
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def pg_url_with_schema(schema: str) -> str:
    """What the server connects with: the runtime role, in ``schema``."""
    return pg_url_as(PG_RUNTIME, schema)


def pg_owner_url(schema: str) -> str:
    """What `hotline db upgrade` connects with: the owner role, in ``schema``."""
    return pg_url_as(PG_OWNER, schema)


def pg_owner_url_for(runtime_url: str) -> str:
    """The owner's URL for a runtime URL of these tests (same database and schema)."""
    return make_url(runtime_url).set(username=PG_OWNER).render_as_string(hide_password=False)


def pg_database_settings(schema: str) -> DatabaseSettings:
    return DatabaseSettings(
        url=pg_url_with_schema(schema), owner_url=pg_owner_url(schema), retry_seconds=2.0
    )


def keep_shared_setups_on_one_worker(items: Sequence[pytest.Item]) -> None:
    """`./dev test` runs a worker per core (pytest-xdist, ``--dist loadgroup``); the tests that
    share a set-up stay on one worker: the real-PBX suite (one Asterisk for the session), the
    modules that use the loaded model (one model in memory, and CPU-bound tests taking turns
    rather than starving each other) and, otherwise, each module (its module-scoped site, and
    tests written in the order each leaves that site)."""
    on_the_model = {
        item.path for item in items if "real_model" in getattr(item, "fixturenames", ())
    }
    for item in items:
        if "pbx" in item.keywords:
            group = "pbx"
        elif item.path in on_the_model:
            group = "model"
        else:
            group = item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))


def pg_superuser() -> Engine:
    """An engine on HOTLINE_TEST_PG as given (a superuser): roles and schemas are made with it."""
    return create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))


def _make_pg_roles() -> None:
    if _pg_roles_made:
        return
    admin = pg_superuser()
    try:
        with admin.begin() as connection:
            # CREATEROLE: `hotline db roles --apply` may create the runtime role it names.
            connection.execute(text(f'CREATE ROLE "{PG_OWNER}" LOGIN CREATEROLE'))
            _pg_roles_made.append(PG_OWNER)
            connection.execute(text(f'CREATE ROLE "{PG_RUNTIME}" LOGIN'))
            _pg_roles_made.append(PG_RUNTIME)
    finally:
        admin.dispose()


def drop_pg_roles(*names: str) -> None:
    """Drop roles and whatever they own or were granted in the test database."""
    admin = pg_superuser()
    try:
        with admin.begin() as connection:
            for name in names:
                exists = connection.execute(
                    text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": name}
                ).first()
                if exists is not None:
                    connection.execute(text(f'DROP OWNED BY "{name}" CASCADE'))
                    connection.execute(text(f'DROP ROLE "{name}"'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def _pg_roles_dropped_at_the_end() -> Iterator[None]:
    yield
    if _pg_roles_made:
        # The runtime role first: it holds privileges on the owner's objects.
        drop_pg_roles(*reversed(_pg_roles_made))
        _pg_roles_made.clear()


@contextlib.contextmanager
def new_pg_schema(*, migrated: bool = True) -> Iterator[str]:
    """A schema of its own, made by a superuser for the owner role (as a DBA would); with
    ``migrated``, brought to the newest migration by ``hotline db upgrade``'s own function,
    which grants the runtime role its privileges. Dropped at the end."""
    _make_pg_roles()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = pg_superuser()
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{PG_OWNER}"'))
    try:
        if migrated:
            upgrade_database(pg_database_settings(schema))
        yield schema
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A migrated schema, the runtime role granted."""
    with new_pg_schema() as schema:
        yield schema


@pytest.fixture(scope="module")
def module_pg_schema() -> Iterator[str]:
    """A migrated schema shared by a module's tests (a site a module's tests share)."""
    with new_pg_schema() as schema:
        yield schema


@pytest.fixture
def pg_empty_schema() -> Iterator[str]:
    """A schema owned by the owner role, with no tables: for tests of migrations."""
    with new_pg_schema(migrated=False) as schema:
        yield schema


def use_pg_schema(settings: Settings, schema: str) -> None:
    """Point ``settings`` at ``schema``: the runtime role's URL, and the owner's."""
    settings.database.url = pg_url_with_schema(schema)
    settings.database.owner_url = pg_owner_url(schema)


def with_site_keys(settings: Settings, folder: Path) -> Settings:
    """``settings`` with the secrets folder ``folder/secrets`` and the site's keys in it, as
    `hotline db upgrade` makes them (services that number cases read the reference key)."""
    settings.secrets.folder = folder / "secrets"
    site_secrets.create_site_keys(settings.secrets)
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings()
    settings.database.url = f"sqlite:///{tmp_path / 'hotline.db'}"
    settings.database.retry_seconds = 2.0
    settings.recordings.root = tmp_path / "recordings"
    settings.transcription.cache_dir = tmp_path / "models"
    # One worker thread, so that the claims come in order; a test of passes side by side says so.
    settings.transcription.concurrency = 1
    return with_site_keys(settings, tmp_path)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Database]:
    if request.param == "postgresql":
        use_pg_schema(settings, request.getfixturevalue("pg_schema"))
    database = Database(settings.database, create=True)
    yield database
    database.dispose()


@contextlib.contextmanager
def owner_connection(db: Database) -> Iterator[Connection]:
    """One transaction on ``db``'s database as its owner (see ``owner_db``)."""
    owner = Database(owner_settings(db.settings), migrate=False)
    try:
        with owner.engine.begin() as connection:
            yield connection
    finally:
        owner.dispose()


@pytest.fixture
def owner_db(db: Database, settings: Settings) -> Iterator[Database]:
    """``db``'s database opened as its owner: for what the runtime role may not do (drop a
    trigger, alter a table, migrate). SQLite has no roles: the same file."""
    owner = Database(owner_settings(settings.database), migrate=False)
    yield owner
    owner.dispose()


@pytest.fixture
def system() -> Actor:
    return Actor.system("test")


TEST_PASSWORD = "test-password-1"


def bootstrap(
    db: Database,
    settings: Settings,
    username: str = "admin",
    roles: Sequence[str] = ("admin",),
    password: str = TEST_PASSWORD,
) -> Actor:
    """A new site's first admin, made the one way there is (signin.bootstrap_admin)."""
    db.run(
        lambda session: signin.bootstrap_admin(
            session,
            settings,
            username=username,
            display_name=username.title(),
            password=password,
            os_user="test",
            now=utcnow(),
            roles=tuple(roles),
        )
    )
    return db.run(lambda session: agents.resolve_actor(session, username, settings.roles))


def add_agent(
    db: Database,
    settings: Settings,
    username: str,
    roles: Sequence[str] = ("agent",),
    *,
    by: str = "admin",
    **fields: Any,
) -> str:
    """Add an agent as the admin ``by`` (agents.add_agent); returns the one-time password."""

    def work(session: Session) -> str:
        admin = agents.resolve_actor(session, by, settings.roles)
        now = fields.pop("now", None)
        details = agents.AgentDetails(
            fields.pop("display_name", username.title()), tuple(roles), **fields
        )
        added = agents.add_agent(session, settings, admin, username, details, now=now)
        return added.one_time_password

    return db.run(work)


class Staff:
    """Agents of a small site, created through the real services, as actors: the admin by
    bootstrap, the others added by that admin. ``passwords``: each one's (one-time but the
    admin's)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        bootstrap(db, settings)
        self.passwords = {"admin": TEST_PASSWORD}
        self.add("supervisor", ["supervisor"], "customer-care")
        self.add("carer", ["agent"], "customer-care")
        self.add("biller", ["agent"], "billing")
        self.add("qa", ["qa"], None)

    def add(self, username: str, roles: list[str], department: str | None) -> None:
        self.passwords[username] = add_agent(
            self.db, self.settings, username, roles, department=department
        )

    def actor(self, username: str) -> Actor:
        return self.db.run(
            lambda session: agents.resolve_actor(session, username, self.settings.roles)
        )

    def session(self) -> Session:
        return Session(self.db.engine, expire_on_commit=False)


@pytest.fixture
def staff(db: Database, settings: Settings) -> Staff:
    return Staff(db, settings)
