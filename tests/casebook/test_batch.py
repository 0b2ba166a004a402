"""Batch writes straight to the driver store exactly what SQLAlchemy's own ``execute`` stores,
and fail as it fails."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from casebook.batch import chunked, execute_many, ids_by, insert_rows, with_defaults
from casebook.db import Database
from casebook.models import Call

CALLS: sa.Table = Call.__table__  # type: ignore[attr-defined]
RENAME = CALLS.update().where(CALLS.c.id == sa.bindparam("call_key"))
INSERT = CALLS.insert()


STARTED = datetime(2026, 11, 23, 8, 0, 1, 250, tzinfo=UTC)


def call_row(linkedid: str) -> dict[str, Any]:
    values = {
        "linkedid": linkedid,
        "started_at": STARTED,
        "ended_at": datetime(2026, 11, 23, 8, 0, 30, tzinfo=UTC),
        "ivr_choices": ["1", "شكوى"],
        "caller_number": None,
    }
    return with_defaults(Call, values)


def stored_rows(db: Database) -> dict[str, tuple[object, ...]]:
    """Each call's columns as the database holds them (raw, not through the ORM's types)."""
    columns = ("started_at", "ended_at", "ivr_choices", "caller_number", "did")
    with db.engine.connect() as connection:
        query = sa.text(f"SELECT linkedid, {', '.join(columns)} FROM call")
        return {row[0]: tuple(row[1:]) for row in connection.execute(query)}


def test_rows_are_stored_as_sqlalchemy_stores_them(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(INSERT, [call_row("by-sqlalchemy.1"), call_row("by-sqlalchemy.2")])
        execute_many(connection, INSERT, [call_row("by-driver.1"), call_row("by-driver.2")])
    stored = stored_rows(db)
    assert stored["by-driver.1"] == stored["by-sqlalchemy.1"]
    assert stored["by-driver.2"] == stored["by-sqlalchemy.2"]
    with db.session() as s:
        call = s.exec(select(Call).where(Call.linkedid == "by-driver.1")).one()
    assert call.ivr_choices == ["1", "شكوى"]
    assert call.started_at is not None and call.started_at.replace(tzinfo=UTC) == STARTED


def test_an_update_picks_rows_by_a_named_key(db: Database) -> None:
    db.run(lambda s: insert_rows(s, Call, [call_row("u.1"), call_row("u.2")]))
    with db.session() as s:
        ids = {c.linkedid: c.id for c in s.exec(select(Call))}
    with db.engine.begin() as connection:
        execute_many(connection, RENAME, [{"call_key": ids["u.2"], "did": "15654"}])
    assert stored_rows(db)["u.2"][4] == "15654"
    assert stored_rows(db)["u.1"][4] is None


def test_a_row_without_a_parameter_is_refused_clearly(db: Database) -> None:
    with db.engine.begin() as connection, pytest.raises(ValueError, match="call_key"):
        execute_many(connection, RENAME, [{"did": "15654"}])


def test_a_constraint_violation_is_sqlalchemys_error(db: Database) -> None:
    """So ``Database.run`` tells transient errors from bugs as it does for ``execute``."""
    db.run(lambda s: insert_rows(s, Call, [call_row("dup.1")]))
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        execute_many(connection, INSERT, [call_row("dup.2"), call_row("dup.1")])
    assert set(stored_rows(db)) == {"dup.1"}  # the batch is rolled back whole


def test_no_rows_is_no_statement(db: Database) -> None:
    with db.engine.begin() as connection:
        execute_many(connection, RENAME, [])
    assert stored_rows(db) == {}


def test_rows_just_inserted_are_found_again_by_a_key(db: Database) -> None:
    linkedids = [f"k.{n}" for n in range(1203)]  # more keys than one IN (...) query takes
    assert len(chunked(linkedids)) == 3
    db.run(lambda s: insert_rows(s, Call, [call_row(linkedid) for linkedid in linkedids]))
    with db.engine.connect() as connection:
        ids = ids_by(connection, CALLS.c.linkedid, [*linkedids, "k.none", "k.0"])
        only_open = ids_by(connection, CALLS.c.linkedid, linkedids, CALLS.c.ended_at.is_(None))
    with db.session() as s:
        assert ids == {c.linkedid: c.id for c in s.exec(select(Call))}
    assert only_open == {}  # every row has ended_at
