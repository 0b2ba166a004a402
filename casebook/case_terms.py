"""The word index of confirmed complaints: the terms of each case's text, and the condition that
finds the cases holding a term.

Chosen among what works on both SQLite and PostgreSQL, measured on 1,000,000 cases
(bench/case_search.py, 2026-11-30):

- a folded-text column and ``LIKE '%word%'``: every complaint read for every search; a rare
  word took 290 ms on SQLite and 466 ms on PostgreSQL (bare SQL, newest 50);
- a trigram index (pg_trgm, trusted in PostgreSQL 15) does substring search on PostgreSQL only,
  and is an extension created once per database, in one schema, by a role with CREATE on the
  database, which a site's owner role need not have; SQLite would need FTS5 beside it: two
  engines, two query languages, two behaviours to test;
- this table, (term, case_id) as its primary key: the same SQL on both, no extension, a word's
  cases found by one index range and any case checked for a word by one key lookup
  (``holding_terms``): the same rare word in 7 ms on SQLite and 12 ms on PostgreSQL through
  the whole service (access rule, page, count of the rest, audit entry).

Words match whole, spelling folded and the article dropped (casebook.arabic.search_terms), so
"الفاتورة" finds "فاتوره" and "بالفاتورة". No prefix match: a B-tree range over text depends on
the database's collation, which a site chooses.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, delete, func, insert, select
from sqlmodel import Session, col

from casebook.arabic import search_terms
from casebook.models import TERM_CHARS, Case, CaseTerm


def terms_of(text: str) -> list[str]:
    """The terms ``text`` is indexed under, or looked up by: cut to the column, so a query
    cut alike finds them."""
    return list(dict.fromkeys(term[:TERM_CHARS] for term in search_terms(text)))


def index_complaint(session: Session, case: Case) -> None:
    """Index the case's confirmed text: called where that text is written (confirming the
    draft), so the index never lags behind it."""
    assert case.id is not None
    session.execute(delete(CaseTerm).where(col(CaseTerm.case_id) == case.id))
    terms = terms_of(case.confirmed_text or "")
    if terms:
        session.execute(insert(CaseTerm), [{"term": term, "case_id": case.id} for term in terms])


# Postings counted per term of a query, at most: enough to tell a term that picks a few cases
# (read them by id) from one in a good share of all cases (read the newest and check each).
DRIVING_POSTINGS = 5_000


def _cases_holding(term: str) -> Select[int]:
    return (
        select(col(CaseTerm.case_id))
        .where(col(CaseTerm.term) == term)
        .order_by(col(CaseTerm.case_id))
    )


def _postings(session: Session, term: str) -> int:
    """How many cases hold ``term``, counted up to DRIVING_POSTINGS + 1 (an index range)."""
    # In the key's order: the plan PostgreSQL keeps for this statement once it is prepared
    # (after five runs) is then the key's range whatever the term; without it, a plan made for
    # a term most cases hold read the whole table for a rare one (0.15 s on 1,000,000 cases).
    held = _cases_holding(term).limit(DRIVING_POSTINGS + 1)
    counted = select(func.count()).select_from(held.subquery())
    return int(session.execute(counted).scalar_one())


def holding_terms(session: Session, terms: list[str]) -> list[ColumnElement[bool]]:
    """Conditions for the cases holding every term (of ``terms_of``). The rarest term, when it
    is rare enough, drives: its cases' ids are read first and the cases fetched by id; the
    other terms are checked case by case through the primary key (``EXISTS``). A term most
    cases hold must never drive: SQLite would read all its cases to show 50, where checking
    the newest cases one by one finds 50 in a few hundred. The driver's ids (at most
    DRIVING_POSTINGS) are given as values, so both planners know how few cases they are."""
    counted = sorted((_postings(session, term), term) for term in terms)
    conditions: list[ColumnElement[bool]] = []
    for position, (postings, term) in enumerate(counted):
        if position == 0 and postings <= DRIVING_POSTINGS:
            ids = list(session.execute(_cases_holding(term)).scalars())
            conditions.append(col(Case.id).in_(ids))
        else:
            held = select(col(CaseTerm.case_id)).where(
                col(CaseTerm.term) == term, col(CaseTerm.case_id) == col(Case.id)
            )
            # OFFSET 0 keeps PostgreSQL checking case by case, as SQLite does, rather than
            # planning a join over every case that holds the word.
            conditions.append(held.offset(0).exists())
    return conditions
