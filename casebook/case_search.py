"""Finding cases: the one listing service behind `cases list` and `cases search`.

A search combines any of: the caller's number (as stored, in any of the forms a network gives
it), the reference, the account or line number the caller keyed (exact digits), words of the
confirmed complaint (casebook.case_terms), the date it was registered, the assigned agent, the
department, the status, and whether it is past its promised resolution (casebook.sla.overdue).
It shows only the cases the actor may see (the access rule is ``Actor.cases_seen``), newest
first, one page at a time with the count of the rest (casebook.paging), and is audited as a
read of personal data with the references shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from casebook import arabic, audit, sla
from casebook.access import Actor
from casebook.case_terms import holding_terms, terms_of
from casebook.cases import check_department, load_for, moment_or_now
from casebook.errors import NotFound, RuleViolation
from casebook.models import KEYPAD_DIGITS, Agent, Case, CaseStatus
from casebook.paging import Page, take_page
from casebook.phone import national_digits, normalise
from casebook.reference import InvalidReference, normalise_reference
from casebook.settings import CasebookConfig, PhoneSettings


@dataclass(frozen=True)
class CaseQuery:
    """What to look for; None (False) leaves a criterion out, all of them: every case."""

    caller: str | None = None
    reference: str | None = None
    account: str | None = None  # the keypad number, exactly as keyed
    words: str | None = None
    since: datetime | None = None  # registered at or after
    until: datetime | None = None  # registered before
    agent: str | None = None  # the assigned agent's user name
    department: str | None = None
    status: CaseStatus | None = None
    overdue: bool = False


def caller_forms(given: str, phone: PhoneSettings) -> list[str]:
    """The stored forms of the number ``given`` (casebook.phone normalises what the PBX
    presented, national or international): an exact match on each uses the column's index."""
    number = normalise(given, phone)
    if number.number is None:
        why = number.refused or "no number"
        raise RuleViolation(f"caller number {given!r} is not a phone number: {why}")
    national = national_digits(number.number, phone)
    code = phone.country_code
    forms = {number.number, national, "0" + national, code + national, "+" + code + national}
    return sorted(forms | {"00" + code + national})


def _keypad_digits(given: str) -> str:
    """An account number as searched for: the digits a caller keys (spaces and dashes an agent
    types between groups dropped, Arabic-Indic digits made ASCII)."""
    digits = arabic.normalise(given).replace(" ", "")
    if not (digits.isascii() and digits.isdigit() and len(digits) <= KEYPAD_DIGITS):
        raise RuleViolation(
            f"{given!r} is not an account number: digits only, at most {KEYPAD_DIGITS}"
        )
    return digits


def _agent_id(session: Session, username: str) -> int:
    agent = session.exec(select(Agent).where(Agent.username == username)).first()
    if agent is None or agent.id is None:
        raise NotFound(f"no agent named {username!r}")
    return agent.id


def _conditions(
    session: Session, settings: CasebookConfig, query: CaseQuery, now: datetime
) -> list[Any]:
    """The query as conditions on the case table, each refused with a clear line when it
    cannot match anything by its form (a malformed reference). A period that ends before it
    starts is the request's mistake, refused where requests are read (the API's
    ``site_period``)."""
    found: list[Any] = []
    if query.caller is not None:
        found.append(col(Case.caller_number).in_(caller_forms(query.caller, settings.phone)))
    if query.reference is not None:
        try:
            found.append(col(Case.reference) == normalise_reference(query.reference))
        except InvalidReference as exc:
            raise RuleViolation(f"{query.reference!r} is not a reference number: {exc}") from exc
    if query.account is not None:
        found.append(col(Case.keypad_number) == _keypad_digits(query.account))
    if query.words is not None:
        terms = terms_of(query.words)
        if not terms:
            raise RuleViolation(
                f"nothing to search for in {query.words!r}: give a word of the complaint "
                "(common words such as في or من are not indexed)"
            )
        found.extend(holding_terms(session, terms))
    if query.since is not None:
        found.append(col(Case.created_at) >= query.since)
    if query.until is not None:
        found.append(col(Case.created_at) < query.until)
    if query.agent is not None:
        found.append(col(Case.assigned_agent_id) == _agent_id(session, query.agent))
    if query.department is not None:
        check_department(settings, query.department)
        found.append(col(Case.department) == query.department)
    if query.status is not None:
        found.append(col(Case.status) == query.status.value)
    if query.overdue:
        found.append(sla.overdue(now))
    return found


def _after(session: Session, actor: Actor, reference: str) -> Any:
    """Cases listed after the case ``reference`` (the last one a page showed), newest first."""
    last = load_for(session, actor, reference, "case.list")
    return or_(
        col(Case.created_at) < last.created_at,
        and_(col(Case.created_at) == last.created_at, col(Case.id) < last.id),
    )


def find_cases(
    session: Session,
    settings: CasebookConfig,
    actor: Actor,
    query: CaseQuery,
    *,
    limit: int | None = 50,
    after: str | None = None,
    now: datetime | None = None,
) -> Page[Case]:
    """The cases the actor may see that match ``query``, newest first: ``limit`` of them (None:
    all) after the case ``after``, and how many more. Audited with the references shown."""
    statement = select(Case).order_by(col(Case.created_at).desc(), col(Case.id).desc())
    seen = actor.cases_seen()
    if seen is not None:
        statement = statement.where(seen)
    conditions = _conditions(session, settings, query, moment_or_now(now))
    if after is not None:
        conditions.append(_after(session, actor, after))
    page = take_page(session, statement.where(*conditions), limit)
    criteria = {key: value for key, value in asdict(query).items() if value not in (None, False)}
    audit.record(
        session,
        actor,
        "case.list",
        "case",
        None,
        {
            "references": [case.reference for case in page.items],
            "criteria": criteria,
            "limit": limit,
            "after": after,
            "more": page.more,
        },
    )
    return page
