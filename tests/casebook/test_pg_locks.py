"""Advisory locks are one site's: two schemas of one PostgreSQL database never wait on each
other's audit chain, assignments, upgrades or phone lookups; one schema's processes do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import OperationalError

from casebook import pg_locks
from tests.conftest import PG_URL, new_pg_schema, pg_url_with_schema

pytestmark = [
    pytest.mark.pg,
    pytest.mark.skipif(not PG_URL, reason="HOTLINE_TEST_PG is not set"),
]
LOCKS = [
    pg_locks.MIGRATION,
    pg_locks.CALLBACK_ASSIGNMENT,
    pg_locks.AUDIT_CHAIN,
    pg_locks.PHONE_LOOKUPS,
]


@contextlib.contextmanager
def connected(schema: str) -> Iterator[Connection]:
    url = pg_url_with_schema(schema).replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def waits(connection: Connection, lock: int, within: str = "") -> bool:
    """Whether taking ``lock`` would wait (refused after a short lock_timeout instead)."""
    with connection.begin():
        connection.execute(text("SET LOCAL lock_timeout = '300ms'"))
        try:
            pg_locks.lock_in_this_schema(connection, lock, within)
        except OperationalError as exc:
            assert "lock timeout" in str(exc)
            return True
    return False


@pytest.mark.parametrize("lock", LOCKS)
def test_a_lock_holds_back_its_own_schema_only(lock: int) -> None:
    with (
        new_pg_schema(migrated=False) as ours,
        new_pg_schema(migrated=False) as theirs,
        connected(ours) as holder,
        connected(ours) as same,
        connected(theirs) as other,
    ):
        with holder.begin():
            pg_locks.lock_in_this_schema(holder, lock)
            assert waits(same, lock)
            assert not waits(other, lock)
        assert not waits(same, lock)  # released at the holder's commit


def test_a_lock_per_value_holds_back_that_value_only() -> None:
    with (
        new_pg_schema(migrated=False) as ours,
        connected(ours) as holder,
        connected(ours) as other,
        holder.begin(),
    ):
        pg_locks.lock_in_this_schema(holder, pg_locks.PHONE_LOOKUPS, "0912345678")
        assert waits(other, pg_locks.PHONE_LOOKUPS, "0912345678")
        assert not waits(other, pg_locks.PHONE_LOOKUPS, "0923456789")
