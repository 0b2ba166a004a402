"""One page of a listing, and how many more there are: a listing is never cut silently.

Every listing takes at most ``limit`` rows and says how many more match after them. The rest is
counted up to ``COUNT_CAP``: past it the page says "at least that many" (``more_exact`` False)
instead of counting a million rows to say so exactly (a count reads every matching row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import func, select
from sqlmodel import Session
from sqlmodel.sql.expression import SelectOfScalar

T = TypeVar("T")

# More than a person pages through, few enough to count in a few milliseconds: counting to
# 10,000 took most of a search's 50-70 ms on 1,000,000 cases (bench/case_search.py).
COUNT_CAP = 1_000


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    # Rows matching after this page: exactly, or (more_exact False) at least this many.
    more: int = 0
    more_exact: bool = True


def take_page(session: Session, query: SelectOfScalar[T], limit: int | None) -> Page[T]:
    """The first ``limit`` rows of ``query`` (all of them for None) and the count of the rest.
    ``query`` is ordered; the page after is the caller's (a keyset condition on the last row)."""
    if limit is None:
        return Page(list(session.exec(query)))
    items = list(session.exec(query.limit(limit)))
    if len(items) < limit:
        return Page(items)
    rest = query.order_by(None).offset(limit).limit(COUNT_CAP + 1).subquery()
    counted = session.execute(select(func.count()).select_from(rest)).scalar_one()
    return Page(items, min(counted, COUNT_CAP), more_exact=counted <= COUNT_CAP)
