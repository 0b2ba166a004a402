"""Shared fixtures: settings in a temporary folder, and a real database per backend.

Every test that takes ``db`` runs against SQLite (a file) and, when ``HOTLINE_TEST_PG`` names a
PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432/test), against PostgreSQL too,
each test in a schema of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlmodel import Session

from casebook import agents, credentials, signin, site_secrets
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from hotline.app.config import Settings

PG_URL = os.environ.get("HOTLINE_TEST_PG", "")

# Real argon2id with the smallest parameters: the library's defaults cost ~0.1 s a hash, and
# every test site hashes one password per agent. Processes the tests start keep the defaults.
credentials.hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PG_URL:
        return
    skip = pytest.mark.skip(reason="HOTLINE_TEST_PG is not set")
    for item in items:
        if "pg" in item.keywords:
            item.add_marker(skip)


def pg_url_with_schema(schema: str) -> str:
    base = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


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
    return with_site_keys(settings, tmp_path)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Database]:
    if request.param == "postgresql":
        schema = request.getfixturevalue("pg_schema")
        settings.database.url = pg_url_with_schema(schema)
    database = Database(settings.database, create=True)
    yield database
    database.dispose()


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
        fields.setdefault("display_name", username.title())
        added = agents.add_agent(session, settings, admin, username=username, roles=roles, **fields)
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
