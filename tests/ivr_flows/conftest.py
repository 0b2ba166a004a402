"""Fixtures for the IVR tests: settings in a temporary folder, a backend, a running server.

``ivr_backend`` is the one seam for the casebook: every call test runs against an in-memory
backend (which answers status lookups in full, so the IVR alone must keep the secret) and
against the real casebook on SQLite and, with HOTLINE_TEST_PG, PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from sqlmodel import select

from casebook.db import Database
from casebook.models import Case, Recording, RecordingKind
from hotline.app.config import Settings
from ivr_flows.backend import IvrBackend, RegisteredComplaint, StatusAnswer
from ivr_flows.casebook_backend import CasebookBackend
from ivr_flows.server import AgiServer
from tests.conftest import BACKENDS, use_pg_schema, with_site_keys
from tests.ivr_flows.memory_backend import MemoryBackend


class CaseView(Protocol):
    reference: str
    linkedid: str
    caller_number: str | None
    message_path: str | None
    category: str
    keypad_number: str | None


class InspectableBackend(IvrBackend, Protocol):
    def case_for_uniqueid(self, uniqueid: str) -> CaseView | None: ...

    def case_count(self) -> int: ...


@pytest.fixture
def ivr_settings(tmp_path: Path) -> Settings:
    settings = Settings()
    settings.recordings.root = tmp_path / "recordings"
    settings.ivr.sounds_dir = tmp_path / "sounds"
    settings.agi.host = "127.0.0.1"
    settings.agi.command_timeout = 10.0  # a safety net: healthy calls never wait for it
    return with_site_keys(settings, tmp_path)


@dataclass
class StoredCaseView:
    reference: str
    linkedid: str
    caller_number: str | None
    message_path: str | None
    category: str
    keypad_number: str | None


class InspectableCasebook(CasebookBackend):
    """The real backend, plus the two questions the tests ask of what it stored."""

    def case_for_uniqueid(self, uniqueid: str) -> StoredCaseView | None:
        with self.db.session() as session:
            case = session.exec(select(Case).where(Case.call_uniqueid == uniqueid)).first()
            if case is None:
                return None
            message = session.exec(
                select(Recording).where(
                    Recording.case_id == case.id, Recording.kind == RecordingKind.MESSAGE.value
                )
            ).first()
            return StoredCaseView(
                reference=case.reference or "",
                linkedid=case.call_linkedid or "",
                caller_number=case.caller_number,
                message_path=message.path if message else None,
                category=case.category or "other",
                keypad_number=case.keypad_number,
            )

    def case_count(self) -> int:
        with self.db.session() as session:
            return len(session.exec(select(Case.id)).all())


@pytest.fixture(params=["memory", *BACKENDS])
def ivr_backend(
    request: pytest.FixtureRequest, ivr_settings: Settings, tmp_path: Path
) -> Iterator[InspectableBackend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    if request.param == "postgresql":
        use_pg_schema(ivr_settings, request.getfixturevalue("pg_schema"))
    else:
        ivr_settings.database.url = f"sqlite:///{tmp_path / 'hotline.db'}"
    database = Database(ivr_settings.database, create=True)
    yield InspectableCasebook(database, ivr_settings)
    database.dispose()


@pytest.fixture
def agi_server(ivr_settings: Settings, ivr_backend: InspectableBackend) -> Iterator[AgiServer]:
    server = AgiServer(ivr_settings, ivr_backend, port=0)
    server.start()
    yield server
    server.stop()


class SpyBackend:
    """Passes calls through to a backend and keeps what went by."""

    def __init__(self, inner: IvrBackend) -> None:
        self.inner = inner
        self.registered: list[RegisteredComplaint] = []
        self.lookups: list[dict[str, str | None]] = []

    def register_complaint(self, **kwargs: Any) -> RegisteredComplaint:
        complaint = self.inner.register_complaint(**kwargs)
        self.registered.append(complaint)
        return complaint

    def case_status(
        self, *, reference: str, caller_number: str | None, last4: str | None
    ) -> StatusAnswer:
        self.lookups.append({"reference": reference, "caller": caller_number, "last4": last4})
        return self.inner.case_status(reference=reference, caller_number=caller_number, last4=last4)


@pytest.fixture
def spy(
    ivr_settings: Settings, ivr_backend: InspectableBackend
) -> Iterator[tuple[AgiServer, SpyBackend]]:
    backend = SpyBackend(ivr_backend)
    with AgiServer(ivr_settings, backend, port=0) as server:
        yield server, backend
