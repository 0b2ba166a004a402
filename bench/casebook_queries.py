"""Casebook queries on 1,000,000 cases: a supervisor's list of open cases (newest first, one
page) and a case looked up by its reference number, p50/p95 over repeated runs.

Each is measured two ways in the same run on the same database: through the casebook service
(access rule, audit entry written, ORM objects) and as the bare SQL statement through the
driver (the baseline). The ratio service/bare is the price of the rules.

    .venv/bin/python bench/casebook_queries.py [--cases N] [--repeat N] [--postgresql]
"""

from __future__ import annotations

import argparse
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from casebook import agents, cases, signin
from casebook.access import Actor
from casebook.case_search import CaseQuery, find_cases
from casebook.case_terms import terms_of
from casebook.clock import utcnow
from casebook.db import Database, upgrade_database
from casebook.models import CaseStatus
from casebook.reference import reference_for_id
from casebook.settings import DatabaseSettings
from hotline.app.config import Settings

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STATUSES = [s.value for s in CaseStatus]
BATCH = 20_000
LIST_SQL = (
    "SELECT * FROM complaint_case WHERE status = 'open' ORDER BY created_at DESC, id DESC LIMIT 50"
)
LOOKUP_SQL = "SELECT * FROM complaint_case WHERE reference = :reference"
# The bench site's reference key (a real site's is in its secrets folder).
REFERENCE_KEY = secrets.token_bytes(32)


# The words complaints are made of: a few common ones, the rest ever rarer (Zipf), as in
# real text; with a neighbourhood name each (many, each rare) so a search can be selective.
VOCABULARY = (
    "انقطاع الكهرباء الإنترنت الفاتورة مرتفعة الخدمة بطيئة الشبكة المياه مقطوعة منذ أسبوع "
    "يومياً الموظف لم يرد الاتصال مرات عديدة العداد خاطئ الرصيد خصم الباقة الاشتراك إلغاء "
    "التوصيل متأخر الطلب الشكوى السابقة المنطقة الحي الشارع العطل الفني الصيانة الموعد"
)
COMMON_WORDS = VOCABULARY.split()
PLACES = 5_000
DEPARTMENTS = ("customer-care", "billing", "network", "field")
AGENTS = 40
HOUR = timedelta(hours=1)


def complaint_text(rng: random.Random) -> str:
    words = rng.choices(COMMON_WORDS, weights=WEIGHTS, k=rng.randrange(6, 14))
    return " ".join([*words, "حي", place_name(rng.randrange(PLACES))])


def place_name(number: int) -> str:
    """A made-up Arabic name per number: 28 letters, three of them."""
    letters = "بتثجحخدذرزسشصضطظعغفقكلمنهوي"
    first, rest = divmod(number, len(letters) ** 2)
    second, third = divmod(rest, len(letters))
    return "".join(letters[i % len(letters)] for i in (first, second, third)) + "ان"


WEIGHTS = [1 / rank for rank in range(1, len(COMMON_WORDS) + 1)]


def add_agents(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO agent (id, username, display_name, roles, department, languages,"
                " skills, shift_days, active, password_must_change, failed_signins, created_at)"
                " VALUES (:id, :username, :username, '[\"agent\"]', :department, '[]', '[]',"
                " '[]', true, false, 0, :created)"
            ),
            [
                {
                    "id": n,
                    "username": f"agent{n}",
                    "department": DEPARTMENTS[n % len(DEPARTMENTS)],
                    "created": datetime(2024, 11, 1, tzinfo=UTC),
                }
                for n in range(1, AGENTS + 1)
            ],
        )
        if db.engine.dialect.name == "postgresql":  # ids given: move the sequence past them
            connection.execute(text(f"SELECT setval('agent_id_seq', {AGENTS})"))


# complaint_case's columns and the keys of fill's rows that give them; the rest are constants.
CASE_COLUMNS = {
    "id": "id",
    "reference": "reference",
    "caller_number": "caller",
    "status": "status",
    "department": "department",
    "assigned_agent_id": "agent",
    "confirmed_text": "text",
    "created_at": "created",
    "updated_at": "created",
    "promised_by": "promised",
    "resolved_at": "resolved",
    "priority": "priority",
    "escalation_level": "zero",
    "unsatisfied_rounds": "zero",
}


def insert_rows(
    connection: Connection, table: str, columns: dict[str, str], rows: list[dict[str, object]]
) -> None:
    """Rows in bulk: COPY on PostgreSQL (an INSERT per row took over 15 minutes for 1,000,000
    cases and their words), one executemany on SQLite."""
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[key] for key in columns.values()])
        return
    values = ", ".join(f":{key}" for key in columns.values())
    connection.execute(text(f"INSERT INTO {table} ({names}) VALUES ({values})"), rows)


def fill(db: Database, count: int) -> None:
    """``count`` cases over two years in four departments, a fifth of them open, most assigned
    to one of 40 agents, each with a confirmed complaint and its words indexed (as confirming
    does, casebook.case_terms), inserted in bulk."""
    start = datetime(2024, 11, 22, tzinfo=UTC)
    rng = random.Random(15654)
    add_agents(db)
    with db.engine.begin() as connection:
        for first in range(1, count + 1, BATCH):
            rows = []
            for n in range(first, min(first + BATCH, count + 1)):
                created = start + timedelta(seconds=n * 63)
                status = "open" if n % 5 == 0 else rng.choice(STATUSES)
                finished = status in ("resolved", "follow_up", "closed")
                rows.append(
                    {
                        "id": n,
                        "reference": reference_for_id(n, REFERENCE_KEY),
                        "caller": f"09{rng.randrange(10**8):08d}",
                        "status": status,
                        "department": DEPARTMENTS[n % len(DEPARTMENTS)],
                        "agent": rng.randrange(1, AGENTS + 1) if n % 3 else None,
                        "text": complaint_text(rng),
                        "created": created,
                        "promised": created + 48 * HOUR,
                        "resolved": created + 24 * HOUR if finished else None,
                        "priority": "normal",
                        "zero": 0,
                    }
                )
            terms = [
                {"term": term, "case_id": row["id"]}
                for row in rows
                for term in terms_of(str(row["text"]))
            ]
            insert_rows(connection, "complaint_case", CASE_COLUMNS, rows)
            insert_rows(connection, "case_term", {"term": "term", "case_id": "case_id"}, terms)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text("ANALYZE"))


def timed(work: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


@dataclass
class BenchSite:
    """A casebook of ``cases`` cases (``fill``) and its admin ``boss``, on SQLite or PostgreSQL."""

    db: Database
    settings: Settings
    boss: Actor
    schema: str | None  # PostgreSQL's schema, dropped by ``close``
    filled_seconds: float

    @property
    def backend(self) -> str:
        return "PostgreSQL" if self.schema else "SQLite"

    def close(self) -> None:
        self.db.dispose()
        if self.db.sqlite_file is not None:
            shutil.rmtree(self.db.sqlite_file.parent, ignore_errors=True)
        if self.schema is not None:
            with create_engine(PG).begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))


def build_site(cases: int, postgresql: bool) -> BenchSite:
    schema = None
    if postgresql:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with create_engine(PG).begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    settings = Settings()
    settings.database.url = url
    # On PostgreSQL only the owner migrates (here one role, the superuser, is both).
    upgrade_database(DatabaseSettings(url=url))
    db = Database(DatabaseSettings(url=url), create=True)
    started = time.perf_counter()
    fill(db, cases)
    filled = time.perf_counter() - started
    db.run(
        lambda s: signin.bootstrap_admin(
            s,
            settings,
            username="boss",
            display_name="Boss",
            password=secrets.token_urlsafe(15),
            os_user="bench",
            now=utcnow(),
            roles=("admin", "supervisor"),
        )
    )
    boss = db.run(lambda s: agents.resolve_actor(s, "boss", settings.roles))
    return BenchSite(db, settings, boss, schema, filled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--postgresql", action="store_true", help="the local server, not SQLite")
    args = parser.parse_args()

    site = build_site(args.cases, args.postgresql)
    db, boss, schema = site.db, site.boss, site.schema
    rng = random.Random(7)
    references = [
        reference_for_id(rng.randrange(1, args.cases + 1), REFERENCE_KEY)
        for _ in range(args.repeat)
    ]
    picks = iter(references * 2)

    def service_list() -> object:
        open_cases = CaseQuery(status=CaseStatus.OPEN)
        return db.run(lambda s: find_cases(s, site.settings, boss, open_cases, limit=50))

    def service_lookup() -> object:
        reference = next(picks)
        return db.run(lambda s: cases.get_case(s, boss, reference))

    raw = db.engine.raw_connection()
    bare_picks = iter(references * 2)
    dialect_lookup = LOOKUP_SQL.replace(":reference", "?" if schema is None else "%s")

    def bare_list() -> object:
        cursor = raw.cursor()
        cursor.execute(LIST_SQL)
        return cursor.fetchall()

    def bare_lookup() -> object:
        cursor = raw.cursor()
        cursor.execute(dialect_lookup, (next(bare_picks),))
        return cursor.fetchall()

    rows = []
    for name, ours, bare in (
        ("list open cases (50, newest)", service_list, bare_list),
        ("look up by reference", service_lookup, bare_lookup),
    ):
        ours(), bare()  # warm caches and prepared statements
        ours_ms, bare_ms = timed(ours, args.repeat), timed(bare, args.repeat)
        rows.append((name, p(ours_ms, 50), p(ours_ms, 95), p(bare_ms, 50), p(bare_ms, 95)))
    raw.close()

    print(
        f"casebook queries: {args.cases:,} cases on {site.backend} "
        f"(filled in {site.filled_seconds:.0f} s), "
        f"{args.repeat} runs each; service = access rule + audit entry + ORM"
    )
    print(
        f"{'query':<30}{'p50 ms':>9}{'p95 ms':>9}{'bare p50':>10}{'bare p95':>10}{'p50 ratio':>11}"
    )
    for name, p50, p95, b50, b95 in rows:
        print(f"{name:<30}{p50:>9.2f}{p95:>9.2f}{b50:>10.2f}{b95:>10.2f}{p50 / b50:>11.1f}")
    site.close()


if __name__ == "__main__":
    main()
