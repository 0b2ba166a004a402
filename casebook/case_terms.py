"""The word index of confirmed complaints: the terms of each case's text, and the condition that
finds the cases holding a term.

Measured on 1,000,000 cases (bench/case_search.py), the choice between what works on both
SQLite and PostgreSQL:

- a folded-text column and ``LIKE '%word%'``: a full scan of every complaint, the slowest on both;
- a trigram index (pg_trgm) does substring search on PostgreSQL only, and is an extension the
  owner role may not be allowed to create (CREATE on the database; one schema per database);
  SQLite would need FTS5 beside it: two engines, two query languages, two behaviours to test;
- this table (term, case_id) as the primary key: the same SQL on both, a word found by one index
  range, and a query of several words is one ``IN`` per word.

Words match whole, spelling folded and the article dropped (casebook.arabic.search_terms), so
"الفاتورة" finds "فاتوره" and "بالفاتورة". No prefix match: a B-tree range over text depends on
the database's collation, which a site chooses.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, insert, select
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


def holds_term(term: str) -> ColumnElement[bool]:
    """The cases whose confirmed text holds ``term`` (one of ``terms_of``)."""
    return col(Case.id).in_(select(col(CaseTerm.case_id)).where(col(CaseTerm.term) == term))
