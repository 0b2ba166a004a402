"""Case search on a large casebook (default 1,000,000 cases, the query bench's site): each search
`cases search` offers, through the service (access rule, count of the rest, audit entry), p50 and
p95, as a ratio to looking one case up by its reference through the service, measured in the
same run (the baseline: what a person feels as instant).

Also measured, once per repeat, the alternative the word index replaced: ``LIKE '%word%'`` on
the complaint text (what a folded-text column would be searched with), bare SQL.

    .venv/bin/python bench/case_search.py [--cases N] [--repeat N] [--postgresql]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from casebook_queries import (  # the query bench's site: one builder for both
    AGENTS,
    DEPARTMENTS,
    REFERENCE_KEY,
    build_site,
    p,
    place_name,
    timed,
)

from casebook import agents, cases
from casebook.case_search import CaseQuery, find_cases
from casebook.models import CaseStatus
from casebook.reference import reference_for_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--postgresql", action="store_true", help="the local server, not SQLite")
    args = parser.parse_args()

    site = build_site(args.cases, args.postgresql)
    db, settings, boss = site.db, site.settings, site.boss
    # An agent sees their own cases and their department's (the access rule in the query).
    agent = db.run(lambda s: agents.resolve_actor(s, "agent1", settings.roles))
    rng = random.Random(7)
    picks = [rng.randrange(1, args.cases + 1) for _ in range(args.repeat * 4)]
    references = iter([reference_for_id(n, REFERENCE_KEY) for n in picks])
    places = iter([place_name(n % 5_000) for n in picks])
    middle = datetime(2024, 11, 22, tzinfo=UTC) + timedelta(seconds=args.cases * 63 // 2)
    numbers = iter(
        db.run(
            lambda s: [
                row[0]
                for row in s.execute(
                    text(
                        "SELECT caller_number FROM complaint_case WHERE id IN ({})".format(
                            ",".join(str(n) for n in picks)
                        )
                    )
                )
            ]
        )
        * 2
    )

    def search(query: Callable[[], CaseQuery], actor: object = boss) -> Callable[[], object]:
        def run() -> object:
            made = query()
            return db.run(lambda s: find_cases(s, settings, actor, made, limit=50))  # type: ignore[arg-type]

        return run

    def lookup() -> object:
        reference = next(references)
        return db.run(lambda s: cases.get_case(s, boss, reference))

    first_page = db.run(lambda s: find_cases(s, settings, boss, CaseQuery(), limit=50))
    last_shown = first_page.items[-1].reference

    def second_page() -> object:
        return db.run(lambda s: find_cases(s, settings, boss, CaseQuery(), after=last_shown))

    like_sql = "SELECT id FROM complaint_case WHERE confirmed_text LIKE :pattern " + (
        "ORDER BY created_at DESC, id DESC LIMIT 50"
    )

    def like_rare() -> object:
        pattern = f"%{next(places)}%"
        with db.engine.connect() as connection:
            return connection.execute(text(like_sql), {"pattern": pattern}).all()

    measured: list[tuple[str, Callable[[], object]]] = [
        ("baseline: one case by reference", lookup),
        ("words: a common one (الفاتورة)", search(lambda: CaseQuery(words="الفاتورة"))),
        ("words: a rare one (a place)", search(lambda: CaseQuery(words=next(places)))),
        (
            "words: common + rare",
            search(lambda: CaseQuery(words=f"انقطاع الكهرباء حي {next(places)}")),
        ),
        ("caller number", search(lambda: CaseQuery(caller=next(numbers)))),
        ("reference", search(lambda: CaseQuery(reference=next(references)))),
        (
            "date range (one week)",
            search(lambda: CaseQuery(since=middle, until=middle + timedelta(days=7))),
        ),
        ("agent", search(lambda: CaseQuery(agent=f"agent{rng.randrange(1, AGENTS + 1)}"))),
        (
            "department + status",
            search(lambda: CaseQuery(department=DEPARTMENTS[1], status=CaseStatus.OPEN)),
        ),
        ("overdue", search(lambda: CaseQuery(overdue=True))),
        ("an agent's own view (access rule)", search(lambda: CaseQuery(), agent)),
        ("an agent's view, a common word", search(lambda: CaseQuery(words="الخدمة"), agent)),
        ("everything, second page (--after)", second_page),
        ("rejected: LIKE '%place%' (bare SQL)", like_rare),
    ]
    rows = []
    for name, work in measured:
        work()  # warm caches and prepared statements
        values = timed(work, args.repeat)
        rows.append((name, p(values, 50), p(values, 95)))
    baseline = rows[0][1]

    print(
        f"case search: {args.cases:,} cases on {site.backend} "
        f"(filled in {site.filled_seconds:.0f} s), {args.repeat} runs each; service = access "
        "rule + page of 50 + count of the rest + audit entry"
    )
    print(f"{'search':<40}{'p50 ms':>9}{'p95 ms':>9}{'p50 ratio':>11}")
    for name, p50, p95 in rows:
        print(f"{name:<40}{p50:>9.2f}{p95:>9.2f}{p50 / baseline:>11.1f}")
    site.close()


if __name__ == "__main__":
    main()
