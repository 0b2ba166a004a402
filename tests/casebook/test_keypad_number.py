"""The account or line number a caller keys (issue 19): stored on the case, digits only and
bounded before the database, searched exactly; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from casebook import cases
from casebook.access import Actor
from casebook.case_search import CaseQuery, find_cases
from casebook.db import Database
from casebook.errors import RuleViolation
from casebook.limits import TextRefused
from casebook.models import KEYPAD_DIGITS, AuditEvent, Case
from hotline.app.config import Settings
from tests.conftest import Staff

IVR = Actor.system("ivr")
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def register(db: Database, settings: Settings, number: int, keypad_number: str | None) -> str:
    case = db.run(
        lambda s: cases.register_complaint(
            s,
            settings,
            IVR,
            caller_number="0910000001",
            uniqueid=f"u-{number}",
            keypad_number=keypad_number,
            now=START + timedelta(days=number),
        )
    )
    return str(case.reference)


def test_the_keyed_number_is_stored_and_audited(db: Database, settings: Settings) -> None:
    reference = register(db, settings, 1, "0" + "9" * (KEYPAD_DIGITS - 1))
    with db.session() as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        assert case.keypad_number == "0" + "9" * (KEYPAD_DIGITS - 1)
        entry = session.exec(
            select(AuditEvent).where(
                AuditEvent.action == "case.register", AuditEvent.object_id == reference
            )
        ).one()
    assert entry.detail["keypad_number"] == case.keypad_number


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("1" * (KEYPAD_DIGITS + 1), f"at most {KEYPAD_DIGITS}"),
        ("0912 345", "digits 0-9 only"),
        ("12*34", "digits 0-9 only"),
        ("٠٩١٢", "digits 0-9 only"),  # the IVR gives ASCII: anything else is a bug upstream
        ("", "digits 0-9 only"),
    ],
    ids=["too-long", "space", "star", "arabic-indic", "empty"],
)
def test_anything_but_digits_within_the_limit_is_refused_and_nothing_stored(
    db: Database, settings: Settings, given: str, why: str
) -> None:
    with pytest.raises(TextRefused, match=f"complaint_case.keypad_number .*{why}"):
        register(db, settings, 1, given)
    with db.session() as session:
        assert session.exec(select(Case)).all() == []


def test_search_by_account_finds_exactly_that_number(
    db: Database, settings: Settings, staff: Staff
) -> None:
    wanted = register(db, settings, 1, "0912345678")
    register(db, settings, 2, "09123456789")  # a longer number holding it: not a match
    register(db, settings, 3, None)
    supervisor = staff.actor("supervisor")

    def refs(account: str) -> list[str]:
        page = db.run(lambda s: find_cases(s, settings, supervisor, CaseQuery(account=account)))
        return [str(case.reference) for case in page.items]

    assert refs("0912345678") == [wanted]
    assert refs("0912-345 678") == [wanted]  # typed in groups
    assert refs("٠٩١٢٣٤٥٦٧٨") == [wanted]  # Arabic-Indic digits
    assert refs("091234567") == []
    for wrong in ("0912x", "1" * (KEYPAD_DIGITS + 1), " "):
        with pytest.raises(RuleViolation, match="not an account number"):
            refs(wrong)
