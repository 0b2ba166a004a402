"""Case search (issue 18, "No search"): each criterion, Arabic folding of the words, pages that
say how many more, the access rule of listings, the audit entry; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from casebook import case_terms, cases, paging
from casebook.access import Actor
from casebook.case_search import CaseQuery, find_cases
from casebook.db import Database, _alembic_config
from casebook.errors import CasebookError, NotFound, RuleViolation
from casebook.models import AuditEvent, CaseStatus
from casebook.paging import Page
from hotline.app.config import Settings
from tests.casebook.test_cases import events
from tests.conftest import Staff, owner_connection

S = CaseStatus
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
BILL = "الفاتورةُ مرتفعـــة جداً بعد إلغاء الباقة"
NET = "انقطاع الإنترنت منذ ثلاثة أيام"


def confirmed(
    db: Database,
    settings: Settings,
    staff: Staff,
    number: int,
    text: str,
    *,
    caller: str = "0910000001",
    department: str = "customer-care",
) -> str:
    """Case ``number`` registered ``number`` days after START, confirmed by the intake agent."""
    at = START + timedelta(days=number)
    case = db.run(
        lambda s: cases.register_complaint(
            s,
            settings,
            Actor.system("ivr"),
            caller_number=caller,
            uniqueid=f"u-{number}",
            draft_text=text,
            now=at,
        )
    )
    reference = str(case.reference)
    db.run(
        lambda s: cases.confirm_draft(
            s,
            settings,
            staff.actor("carer"),
            reference,
            text=text,
            category="network",
            department=department,
            now=at,
        )
    )
    return reference


def found(
    db: Database,
    settings: Settings,
    staff: Staff,
    query: CaseQuery,
    username: str = "supervisor",
    **paging_: object,
) -> Page[str]:
    page = db.run(
        lambda s: find_cases(s, settings, staff.actor(username), query, **paging_)  # type: ignore[arg-type]
    )
    return Page([str(case.reference) for case in page.items], page.more, page.more_exact)


def refs(db: Database, settings: Settings, staff: Staff, query: CaseQuery) -> list[str]:
    return found(db, settings, staff, query).items


@pytest.mark.parametrize(
    "words",
    [
        "فاتورة",  # taa marbuta, no article
        "الفاتوره",  # ha for taa marbuta
        "بالفاتورة",  # a preposition joined to the article
        "الفَاتُورَةُ",  # tashkeel
        "مرتفعة",  # stored with tatweel
        "الغاء",  # stored as إلغاء: hamza and alef forms
        "أَلْغَاءُ",
        "فاتورة الباقة",  # every word must hold
    ],
)
def test_words_are_found_whatever_the_spelling(
    db: Database, settings: Settings, staff: Staff, words: str
) -> None:
    bill = confirmed(db, settings, staff, 1, BILL)
    confirmed(db, settings, staff, 2, NET)
    assert refs(db, settings, staff, CaseQuery(words=words)) == [bill]


def test_all_the_words_must_hold_and_common_words_alone_are_refused(
    db: Database, settings: Settings, staff: Staff
) -> None:
    confirmed(db, settings, staff, 1, BILL)
    assert refs(db, settings, staff, CaseQuery(words="فاتورة إنترنت")) == []
    with pytest.raises(RuleViolation, match="nothing to search for"):
        refs(db, settings, staff, CaseQuery(words="في من ، ؟"))


def test_an_unconfirmed_draft_is_not_searched_by_words(
    db: Database, settings: Settings, staff: Staff
) -> None:
    db.run(
        lambda s: cases.register_complaint(
            s, settings, Actor.system("ivr"), caller_number=None, draft_text=BILL, now=START
        )
    )
    assert refs(db, settings, staff, CaseQuery(words="فاتورة")) == []


@pytest.mark.parametrize(
    "typed", ["0910000001", "+218 91 000 0001", "00218910000001", "٠٩١٠٠٠٠٠٠١", "091-000-0001"]
)
def test_the_caller_number_in_any_form(
    db: Database, settings: Settings, staff: Staff, typed: str
) -> None:
    theirs = confirmed(db, settings, staff, 1, BILL, caller="+218910000001")
    confirmed(db, settings, staff, 2, NET, caller="0920000002")
    assert refs(db, settings, staff, CaseQuery(caller=typed)) == [theirs]


def test_a_caller_number_that_is_no_number_is_refused(
    db: Database, settings: Settings, staff: Staff
) -> None:
    with pytest.raises(RuleViolation, match="not a phone number"):
        refs(db, settings, staff, CaseQuery(caller="091&Local/1"))


def test_the_reference_with_arabic_indic_digits(
    db: Database, settings: Settings, staff: Staff
) -> None:
    wanted = confirmed(db, settings, staff, 1, BILL)
    confirmed(db, settings, staff, 2, NET)
    arabic = wanted.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert refs(db, settings, staff, CaseQuery(reference=arabic)) == [wanted]
    mistyped = wanted[:-1] + str((int(wanted[-1]) + 1) % 10)
    with pytest.raises(RuleViolation, match="check digit"):
        refs(db, settings, staff, CaseQuery(reference=mistyped))


def test_the_date_range_and_a_backwards_one(db: Database, settings: Settings, staff: Staff) -> None:
    first, second, third = (confirmed(db, settings, staff, n, BILL) for n in (1, 2, 3))
    day = START + timedelta(days=2)
    assert refs(db, settings, staff, CaseQuery(since=day)) == [third, second]
    assert refs(db, settings, staff, CaseQuery(until=day)) == [first]
    assert refs(db, settings, staff, CaseQuery(since=day, until=day + timedelta(days=1))) == [
        second
    ]


def test_the_agent_department_and_status(db: Database, settings: Settings, staff: Staff) -> None:
    worked = confirmed(db, settings, staff, 1, BILL)
    billing = confirmed(db, settings, staff, 2, BILL, department="billing")
    carer = staff.actor("carer")
    db.run(lambda s: cases.start_work(s, carer, worked, now=START))
    assert refs(db, settings, staff, CaseQuery(agent="carer")) == [worked]
    assert refs(db, settings, staff, CaseQuery(department="billing")) == [billing]
    assert refs(db, settings, staff, CaseQuery(status=S.IN_PROGRESS)) == [worked]
    assert refs(db, settings, staff, CaseQuery(status=S.OPEN, department="billing")) == [billing]
    with pytest.raises(NotFound, match="no agent named 'nobody'"):
        refs(db, settings, staff, CaseQuery(agent="nobody"))
    with pytest.raises(CasebookError, match="unknown department"):
        refs(db, settings, staff, CaseQuery(department="bakery"))


def test_overdue_is_past_the_promise_and_not_resolved(
    db: Database, settings: Settings, staff: Staff
) -> None:
    late = confirmed(db, settings, staff, 1, BILL)
    fixed = confirmed(db, settings, staff, 2, BILL)
    carer = staff.actor("carer")
    db.run(lambda s: cases.start_work(s, carer, fixed, now=START))
    db.run(lambda s: cases.resolve_case(s, settings, carer, fixed, summary="تم", now=START))
    later = START + timedelta(days=60)
    query = CaseQuery(overdue=True)
    page = db.run(lambda s: find_cases(s, settings, staff.actor("supervisor"), query, now=later))
    assert [case.reference for case in page.items] == [late]
    early = db.run(lambda s: find_cases(s, settings, staff.actor("supervisor"), query, now=START))
    assert early.items == []


def test_pages_say_how_many_more_and_go_on_after_the_last_shown(
    db: Database, settings: Settings, staff: Staff, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [confirmed(db, settings, staff, n, BILL) for n in range(1, 6)]
    newest = made[::-1]
    first = found(db, settings, staff, CaseQuery(), limit=2)
    assert first == Page(newest[:2], 3, True)
    second = found(db, settings, staff, CaseQuery(), limit=2, after=first.items[-1])
    assert second == Page(newest[2:4], 1, True)
    last = found(db, settings, staff, CaseQuery(), limit=2, after=second.items[-1])
    assert last == Page(newest[4:], 0, True)
    assert found(db, settings, staff, CaseQuery(), limit=None) == Page(newest, 0, True)
    # Past the count's cap the page says "at least".
    monkeypatch.setattr(paging, "COUNT_CAP", 2)
    assert found(db, settings, staff, CaseQuery(), limit=1) == Page(newest[:1], 2, False)
    with pytest.raises(NotFound):
        found(db, settings, staff, CaseQuery(), after="100000017")


def test_agents_find_only_their_own_and_their_departments_cases_and_it_is_audited(
    db: Database, settings: Settings, staff: Staff
) -> None:
    care = confirmed(db, settings, staff, 1, BILL)
    billing = confirmed(db, settings, staff, 2, BILL, department="billing")
    query = CaseQuery(words="فاتورة", caller="0910000001")
    assert found(db, settings, staff, query, "carer").items == [care]
    assert found(db, settings, staff, query, "biller").items == [billing]
    assert found(db, settings, staff, query, "qa").items == [billing, care]
    audited: list[AuditEvent] = events(db, "case.list")
    assert [(e.actor, e.detail["references"]) for e in audited] == [
        ("carer", [care]),
        ("biller", [billing]),
        ("qa", [billing, care]),
    ]
    assert audited[0].detail["criteria"] == {"caller": "0910000001", "words": "فاتورة"}
    # Paging after a case the agent may not see is refused like reading it.
    with pytest.raises(CasebookError):
        found(db, settings, staff, CaseQuery(), "biller", after=care)


def test_the_migration_indexes_cases_confirmed_before_it(
    db: Database, settings: Settings, staff: Staff
) -> None:
    bill = confirmed(db, settings, staff, 1, BILL)
    with owner_connection(db) as connection:
        command.downgrade(_alembic_config(connection), "0006")
    with owner_connection(db) as connection:
        command.upgrade(_alembic_config(connection), "head")
    db.engine.dispose()
    with db.engine.begin() as connection:
        count = connection.execute(text("SELECT count(*) FROM case_term")).scalar_one()
    assert count == len(case_terms.terms_of(BILL)) > 0
    assert refs(db, settings, staff, CaseQuery(words="الفاتورة")) == [bill]
