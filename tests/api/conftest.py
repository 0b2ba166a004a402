"""The real server for the API tests: the ``api`` component (uvicorn) on a Unix socket in a
temporary folder, over SQLite and PostgreSQL, with a small staff signed in through the API.

The server starts once per module and backend (its start costs more than most tests); tests
share the site, so each makes the cases and agents it changes.
"""

from __future__ import annotations

import contextlib
import grp
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlmodel import Session, select

from casebook import cases, signin
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import Agent, Case, CaseStatus
from hotline.app.config import Settings
from hotline.app.http_server import ApiServer
from tests.api.unix_http import Answer, Client
from tests.conftest import (
    BACKENDS,
    new_pg_schema,
    use_pg_schema,
    with_site_keys,
)

PASSWORD = "a long enough passphrase"
SYSTEM = Actor.system("test")
_numbers = itertools.count(1)

# username: (roles, department)
STAFF = {
    "supervisor": (["supervisor"], "customer-care"),
    "carer": (["agent"], "customer-care"),
    "biller": (["agent"], "billing"),
    "qa": (["qa"], None),
}


def unique(prefix: str) -> str:
    return f"{prefix}{next(_numbers)}{uuid.uuid4().hex[:4]}"


def socket_group() -> grp.struct_group:
    """A group of the current user for the socket: a supplementary one if there is one (so the
    chown is visible), else the primary group."""
    primary = os.getgid()
    others = [gid for gid in os.getgroups() if gid != primary]
    return grp.getgrgid(others[0] if others else primary)


@dataclass
class ApiSite:
    settings: Settings
    db: Database
    server: ApiServer
    folder: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def anonymous(self) -> Client:
        return Client(self.settings.server.socket)

    def client(self, username: str) -> Client:
        return Client(self.settings.server.socket, self.tokens[username])

    def sign_in(self, username: str, password: str = PASSWORD, **extra: str) -> Answer:
        body = {"username": username, "password": password} | extra
        return self.anonymous.post("/v1/sessions", body)

    def add_agent(
        self, roles: list[str], department: str | None = None, *, extension: str | None = None
    ) -> str:
        """A new agent added by the admin over the API and signed in (first sign-in replaces
        the one-time password); returns the user name. The token is in ``tokens``."""
        username = unique("agent")
        body: dict[str, object] = {
            "username": username,
            "display_name": username.title(),
            "roles": roles,
            "department": department,
        }
        if extension is not None:
            body["extension"] = extension
        added = self.client("admin").post("/v1/agents", body)
        assert added.status == 201, added.body
        first = self.sign_in(username, added.json()["one_time_password"], new_password=PASSWORD)
        assert first.status == 201, first.body
        self.tokens[username] = first.json()["token"]
        return username

    def case(
        self,
        *,
        department: str = "customer-care",
        status: CaseStatus = CaseStatus.OPEN,
        draft_text: str = "الفاتورة غير صحيحة هذا الشهر",
        assigned_to: str | None = None,
    ) -> str:
        """A complaint registered as the IVR would, moved to ``status``; its reference."""

        def work(session: Session) -> str:
            case = cases.register_complaint(
                session,
                self.settings,
                SYSTEM,
                caller_number="0912345678",
                uniqueid=unique("call-"),
                draft_text=draft_text,
            )
            case.department, case.status = department, status.value
            if assigned_to is not None:
                query = select(Agent).where(Agent.username == assigned_to)
                case.assigned_agent_id = session.exec(query).one().id
            session.add(case)
            assert case.reference is not None
            return case.reference

        return self.db.run(work)

    def stored_case(self, reference: str) -> Case:
        with self.db.session() as session:
            return session.exec(select(Case).where(Case.reference == reference)).one()

    def agent(self, username: str) -> Agent:
        with self.db.session() as session:
            return session.exec(select(Agent).where(Agent.username == username)).one()


def site_settings(folder: Path) -> Settings:
    settings = Settings()
    settings.database.url = f"sqlite:///{folder / 'hotline.db'}"
    settings.database.retry_seconds = 2.0
    # Short, so the retry loop (not SQLite's own wait) is what rides out a held lock.
    settings.database.sqlite_busy_timeout_ms = 100
    settings.recordings.root = folder / "recordings"
    settings.recordings.root.mkdir()
    settings.transcription.cache_dir = folder / "models"
    settings.server.socket = folder / "run" / "hotline.sock"
    settings.server.socket_group = socket_group().gr_name
    # Hardly any waiting between failed sign-ins (a test of the wait sets its own), and no
    # limit per address: every test signs in from the same socket ("unix").
    settings.signin.slow_base_seconds = 0.001
    settings.signin.slow_cap_seconds = 0.001
    settings.signin.address_failures = 100_000
    return with_site_keys(settings, folder)


@pytest.fixture(scope="module", params=BACKENDS)
def api_site(request: pytest.FixtureRequest) -> Iterator[ApiSite]:
    # A short folder: a Unix socket's path holds at most 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="hl-api-", dir="/tmp"))
    settings = site_settings(folder)
    schemas = contextlib.ExitStack()
    if request.param == "postgresql":
        use_pg_schema(settings, schemas.enter_context(new_pg_schema()))
    db = Database(settings.database, create=True)
    db.run(
        lambda session: signin.bootstrap_admin(
            session,
            settings,
            username="admin",
            display_name="Admin",
            password=PASSWORD,
            os_user="test",
            now=utcnow(),
        )
    )
    server = ApiServer(db, settings)
    server.start()
    site = ApiSite(settings, db, server, folder)
    try:
        signed = site.sign_in("admin")
        assert signed.status == 201, signed.body
        site.tokens["admin"] = signed.json()["token"]
        for username, (roles, department) in STAFF.items():
            added = site.client("admin").post(
                "/v1/agents",
                {
                    "username": username,
                    "display_name": username.title(),
                    "roles": roles,
                    "department": department,
                },
            )
            assert added.status == 201, added.body
            first = site.sign_in(username, added.json()["one_time_password"], new_password=PASSWORD)
            assert first.status == 201, first.body
            site.tokens[username] = first.json()["token"]
        yield site
    finally:
        server.stop()
        db.dispose()
        schemas.close()
        shutil.rmtree(folder, ignore_errors=True)
