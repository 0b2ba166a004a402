"""Status by phone, limited (issue 17, item 5), through the real FastAGI server driven by the
fake Asterisk, on the real casebook (SQLite and PostgreSQL): per call, a caller who keys
references of cases that are not theirs is told and the call ends at the third, however the
flow comes back; per caller number, lookups over the window are refused, counted in the
database so that several IVR processes share the count; every lookup is audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session, col, select

from casebook import cases
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import AuditEvent
from casebook.phone import last_digits
from casebook.settings import StatusByPhoneSettings
from hotline.app.config import Settings
from ivr_flows.casebook_backend import CasebookBackend
from ivr_flows.flow import BUILTIN_FLOW
from ivr_flows.server import AgiServer
from tests.ivr_flows.fake_asterisk import Caller, CallLog, place_call

IVR = Actor.system("ivr")
OWNER = "0911111111"
STRANGER = "0925550000"
LIMIT = "hotline/enquiry_limit"


@pytest.fixture
def owned(db: Database, settings: Settings) -> list[str]:
    """Five complaints from OWNER's number: the references a stranger tries."""

    def work(session: Session) -> list[str]:
        made = [
            cases.register_complaint(session, settings, IVR, caller_number=OWNER) for _ in range(5)
        ]
        return [case.reference or "" for case in made]

    return db.run(work)


def lookups(db: Database, caller: str | None = STRANGER) -> list[AuditEvent]:
    with db.session() as session:
        query = select(AuditEvent).where(AuditEvent.action == "case.status_lookup")
        found = list(session.exec(query.order_by(col(AuditEvent.id))))
    return [event for event in found if event.detail.get("caller") == caller]


@pytest.fixture
def ivr(db: Database, settings: Settings) -> Iterator[AgiServer]:
    settings.agi.host = "127.0.0.1"
    settings.agi.command_timeout = 10.0  # a safety net: healthy calls never wait for it
    with AgiServer(settings, CasebookBackend(db, settings), port=0) as server:
        yield server


def asks(*references: str) -> list[str]:
    """Main menu 2, then each reference with no last 4 digits (the prompt times out)."""
    keys = ["2"]
    for reference in references:
        keys += [reference, ""]
    return keys


def test_the_third_wrong_reference_of_a_call_is_told_and_the_call_ends(
    ivr: AgiServer, owned: list[str], db: Database
) -> None:
    log = place_call(ivr.address, Caller(callerid=STRANGER, keys=asks(*owned[:3])))
    played = log.played()
    assert played.count("hotline/not_found") == 2
    assert played[-2:] == ["hotline/enter_last4", LIMIT]
    assert "hotline/goodbye_tries" not in played
    # Answered (the listener asks no callback to this number) and audited, each lookup.
    assert log.variables()["HOTLINE_OUTCOME"] == "status"
    refused = lookups(db)
    assert len(refused) == 3 and not any(event.allowed for event in refused)
    assert [event.object_id for event in refused] == owned[:3]


def test_the_count_is_the_calls_however_the_flow_comes_back(
    db: Database, settings: Settings, owned: list[str], tmp_path: Path
) -> None:
    flow = yaml.safe_load(BUILTIN_FLOW.read_text(encoding="utf-8"))
    # Two tries, then back to the main menu: a caller could ask again and again.
    flow["nodes"]["case_status"] |= {"tries": 2, "give_up": "main_menu"}
    settings.ivr.flow_file = tmp_path / "looping.yaml"
    settings.ivr.flow_file.write_text(yaml.safe_dump(flow, allow_unicode=True), encoding="utf-8")
    settings.agi.command_timeout = 10.0
    keys = asks(*owned[:2]) + asks(*owned[2:5])
    with AgiServer(settings, CasebookBackend(db, settings), port=0) as server:
        log = place_call(server.address, Caller(callerid=STRANGER, keys=keys))
    played = log.played()
    assert played.count("hotline/main_menu") == 2
    assert played[-1] == LIMIT
    assert len(lookups(db)) == 3  # the fourth and fifth were never asked


def test_a_number_over_its_lookups_is_refused_by_every_ivr_process(
    db: Database, settings: Settings, owned: list[str]
) -> None:
    settings.status_by_phone.per_number = 4
    settings.agi.command_timeout = 10.0
    # Two FastAGI servers, each with its own connections to the database: two IVR processes.
    other_db = Database(settings.database)
    try:
        with (
            AgiServer(settings, CasebookBackend(db, settings), port=0) as first,
            AgiServer(settings, CasebookBackend(other_db, settings), port=0) as second,
        ):
            ended = place_call(first.address, Caller(callerid=STRANGER, keys=asks(*owned[:3])))
            again = place_call(
                second.address,
                Caller(uniqueid="2.2", callerid=STRANGER, keys=asks(owned[3], owned[4])),
            )
            # Even their own right last 4 digits are not looked at now.
            owner_case = owned[0]
            last4 = last_digits(OWNER, settings.phone)
            proven = place_call(
                first.address,
                Caller(uniqueid="3.3", callerid=STRANGER, keys=["2", owner_case, last4]),
            )
            owner = place_call(
                second.address, Caller(uniqueid="4.4", callerid=OWNER, keys=["2", owner_case])
            )
    finally:
        other_db.dispose()
    assert ended.played()[-1] == LIMIT
    # The fourth lookup is the number's last in the window: the fifth is refused unlooked.
    assert again.played()[-4:] == [
        "hotline/enter_last4",
        "hotline/not_found",
        "hotline/enter_reference",
        LIMIT,
    ]
    assert not_read_out(again) and not_read_out(proven)
    assert proven.played()[-2:] == ["hotline/enter_reference", LIMIT]
    # Another number is not slowed by this one.
    assert "hotline/status_draft" in owner.played()
    stranger = lookups(db)
    assert len(stranger) == 6 and not any(event.allowed for event in stranger)
    refused = [event.detail["refused"] for event in stranger if "refused" in event.detail]
    assert refused == [
        "4 lookups in 60 minutes (at most 4)",
        "5 lookups in 60 minutes (at most 4)",
    ]


def not_read_out(log: CallLog) -> bool:
    return not any("status_" in name or "/date/" in name for name in log.played())


def ask(
    db: Database, settings: Settings, caller: str | None, reference: str, **when: object
) -> cases.CallerStatus:
    limits = StatusByPhoneSettings(per_number=2, window_minutes=60)
    return db.run(
        lambda session: cases.status_for_caller(
            session,
            IVR,
            reference=reference,
            caller_number=caller,
            last4=None,
            phone=settings.phone,
            limits=limits,
            **when,  # type: ignore[arg-type]
        )
    )


def test_the_window_passes_and_withheld_numbers_count_together(
    db: Database, settings: Settings, owned: list[str]
) -> None:
    for caller in (OWNER, None):
        assert not ask(db, settings, caller, owned[0]).limited
        assert not ask(db, settings, caller, owned[0]).limited
        assert ask(db, settings, caller, owned[0]).limited
    # A withheld number is slowed by every withheld caller's lookups; a known one is not.
    assert ask(db, settings, None, owned[1]).limited
    assert not ask(db, settings, STRANGER, owned[1]).limited
    # An hour later the lookups have left the window (they are still in the audit log).
    later = utcnow() + timedelta(minutes=61)
    assert ask(db, settings, OWNER, owned[0], now=later).identity_confirmed
    assert len(lookups(db, OWNER)) == 4
