"""The audit log is hash-chained: an edited or deleted entry is found, appends from several
processes at once keep one chain, and refusals are chained like everything else."""

from __future__ import annotations

import itertools
import multiprocessing
from datetime import UTC, datetime
from pathlib import PurePath

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import Session, col, select

from casebook import audit
from casebook.db import Database, _alembic_config
from casebook.errors import AccessDenied
from casebook.models import AuditEvent
from casebook.settings import DatabaseSettings
from tests.conftest import Staff, owner_connection


def drop_append_only_rule(db: Database) -> None:
    """What someone with the database's owner rights can do: the chain must still tell."""
    with owner_connection(db) as connection:
        if db.engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER audit_event_no_update"))
            connection.execute(text("DROP TRIGGER audit_event_no_delete"))
        else:
            connection.execute(text("DROP TRIGGER audit_event_append_only ON audit_event"))


def tamper(db: Database, statement: str, **values: object) -> None:
    drop_append_only_rule(db)
    with owner_connection(db) as connection:
        connection.execute(text(statement), values)


def write_entries(db: Database, count: int, actor: str = "system:test") -> list[int]:
    ids = []
    for n in range(count):

        def work(s: Session, n: int = n) -> AuditEvent:
            return audit.record(s, actor, "test.write", "test", n, {"n": n})

        ids.append(db.run(work).id or 0)
    return ids


def verify(db: Database, staff: Staff) -> audit.ChainReport:
    return db.run(lambda s: audit.verify_chain(s, staff.actor("admin"), staff.settings))


def test_an_untouched_log_verifies_and_each_entry_links_to_the_one_before(
    db: Database, staff: Staff
) -> None:
    write_entries(db, 3)
    report = verify(db, staff)
    assert report.intact and report.entries >= 8  # five agents added, three entries
    with db.session() as s:
        events = list(s.exec(select(AuditEvent).order_by(col(AuditEvent.id))))
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))


def test_details_of_any_shape_verify_after_a_reload(db: Database, staff: Staff) -> None:
    # Flat plain values are hashed as given; anything else as the JSON column gives it back.
    details: list[dict[str, object]] = [
        {"n": 1, "ratio": 0.5, "ok": True, "none": None, "text": "عربي"},
        {"at": datetime(2026, 11, 22, 8, 0, tzinfo=UTC), "file": PurePath("/rec/a.wav")},
        {"recordings": [{"id": 1, "sha256": None}], "tags": ("a", "b")},
        # Deep inside: a date in a list, a key that is not a string.
        {"calls": [{"ended": datetime(2026, 11, 22, 8, 0, tzinfo=UTC)}], "by_id": {7: "x"}},
    ]
    entries: list[audit.Entry] = [("test.shape", "test", n, d) for n, d in enumerate(details)]
    db.run(lambda s: audit.record_many(s, "system:test", entries))
    db.run(lambda s: audit.record(s, "system:test", "test.shape", "test", 9, details[1]))
    assert verify(db, staff).intact
    with db.session() as s:
        stored = s.exec(select(AuditEvent).where(AuditEvent.action == "test.shape")).all()
    assert [e.detail for e in stored][1]["at"] == "2026-11-22 08:00:00+00:00"
    assert [e.detail for e in stored][2]["tags"] == ["a", "b"]
    assert [e.detail for e in stored][3] == {
        "calls": [{"ended": "2026-11-22 08:00:00+00:00"}],
        "by_id": {"7": "x"},
    }


def test_an_edited_entry_is_reported(db: Database, staff: Staff) -> None:
    ids = write_entries(db, 3)
    tamper(db, "UPDATE audit_event SET actor = 'nobody' WHERE id = :id", id=ids[1])
    report = verify(db, staff)
    assert report.first_break is not None
    assert (report.first_break.event_id, report.first_break.kind) == (ids[1], "edited")
    assert f"audit entry {ids[1]} was edited" in report.first_break.message


def test_a_deleted_entry_is_reported_at_the_entry_after_it(db: Database, staff: Staff) -> None:
    ids = write_entries(db, 3)
    tamper(db, "DELETE FROM audit_event WHERE id = :id", id=ids[1])
    report = verify(db, staff)
    assert report.first_break is not None
    assert (report.first_break.event_id, report.first_break.kind) == (ids[2], "unlinked")


def test_a_refusal_is_chained_like_any_entry(db: Database, staff: Staff) -> None:
    carer = staff.actor("carer")
    with pytest.raises(AccessDenied):
        db.run(lambda s: audit.verify_chain(s, carer, staff.settings))
    with db.session() as s:
        last = s.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc())).first()
    assert last is not None and (last.action, last.allowed) == ("audit.verify", False)
    assert verify(db, staff).intact


def _append_many(url: str, count: int, start: multiprocessing.synchronize.Event) -> None:
    database = Database(DatabaseSettings(url=url, retry_seconds=60))
    start.wait(timeout=60)
    write_entries(database, count, actor=f"system:{multiprocessing.current_process().name}")
    database.dispose()


def test_appends_from_two_processes_at_once_keep_one_chain(db: Database, staff: Staff) -> None:
    url = db.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=_append_many, args=(url, 40, start), name=f"w{n}") for n in (1, 2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=180)
        assert worker.exitcode == 0
    with db.session() as s:
        written = s.exec(select(AuditEvent).where(AuditEvent.action == "test.write")).all()
    assert len(written) == 80
    assert verify(db, staff).intact


def test_entries_written_before_the_chain_existed_are_chained_by_the_migration(
    db: Database,
) -> None:
    with owner_connection(db) as connection:
        command.downgrade(_alembic_config(connection), "0001")
        for n in range(3):
            connection.execute(
                text(
                    "INSERT INTO audit_event (at, actor, action, object_type, allowed, detail) "
                    "VALUES (:at, 'old', 'legacy', 'test', :allowed, :detail)"
                ),
                {"at": f"2026-11-0{n + 1} 10:00:00", "allowed": True, "detail": f'{{"n": {n}}}'},
            )
        command.upgrade(_alembic_config(connection), "head")
    with Session(db.engine) as s:
        report = audit.check_chain(s.exec(select(AuditEvent).order_by(col(AuditEvent.id))))
    assert report.intact and report.entries == 3
    # The append-only rule survived the migration.
    with pytest.raises(Exception, match="append-only"), owner_connection(db) as connection:
        connection.execute(text("UPDATE audit_event SET actor = 'x'"))
