"""Signed audit checkpoints (issue 17): what someone who owns the database can do to the audit
log (lift its triggers, edit, delete, re-hash, restore) is found by verify, which names the
entries affected; so is a deleted last entry after a clean stop, a deleted or forged checkpoint,
and a checkpoint file that no longer agrees with the table."""

from __future__ import annotations

import itertools
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from casebook import audit, site_secrets
from casebook.db import Database
from casebook.models import AuditCheckpoint, AuditEvent
from hotline.app.config import Settings
from tests.conftest import Staff, owner_connection

EVERY = 5


@pytest.fixture
def signer(db: Database, settings: Settings, staff: Staff) -> audit.CheckpointSigner:
    """The server's signing, switched on after the staff were added: like a site upgraded to
    checkpoints, its first signed append covers every entry before it."""
    settings.audit.checkpoint_every = EVERY
    signer = audit.CheckpointSigner.for_site(settings)
    db.sign_audit_checkpoints(signer)
    return signer


def write_entries(db: Database, count: int) -> None:
    for n in range(count):

        def work(session: Session, n: int = n) -> AuditEvent:
            return audit.record(session, "system:test", "test.write", "test", n, {"n": n})

        db.run(work)


def clean_stop(db: Database, signer: audit.CheckpointSigner) -> None:
    db.run(lambda s: audit.write_checkpoint(s, signer, audit.SHUTDOWN))


def verify(db: Database, staff: Staff) -> audit.ChainReport:
    return db.run(lambda s: audit.verify_chain(s, staff.actor("admin"), staff.settings))


def problems(report: audit.ChainReport) -> list[str]:
    return [problem.message for problem in report.problems]


def entries(db: Database) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))))


def checkpoints(db: Database) -> list[AuditCheckpoint]:
    with db.session() as s:
        return list(s.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.number))))


def file_lines(signer: audit.CheckpointSigner) -> list[dict[str, object]]:
    return [json.loads(line) for line in signer.file.read_text().splitlines()]


# --- what the insider does -------------------------------------------------------------------


@contextmanager
def triggers_lifted(db: Database, table: str) -> Iterator[None]:
    """Drop a table's append-only triggers (migrations 0001, 0005) and put them back after, as
    the owner of the database can."""
    with owner_connection(db) as connection:
        if db.engine.dialect.name == "sqlite":
            find = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
            saved = connection.execute(text(find), {"t": table}).all()
            for name, _sql in saved:
                connection.execute(text(f"DROP TRIGGER {name}"))
        else:
            connection.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
    yield
    with owner_connection(db) as connection:
        if db.engine.dialect.name == "sqlite":
            for _name, sql in saved:
                connection.execute(text(sql))
        else:
            connection.execute(
                text(
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                    f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
                )
            )


def rewrite(db: Database, *, edit_seq: int, delete_seq: int, renumber: bool) -> None:
    """The insider's script: edit one entry, delete another, re-hash the whole chain with
    casebook.audit.entry_hash (and, with ``renumber``, close the gap in seq) so that the chain
    alone verifies."""
    with triggers_lifted(db, "audit_event"), owner_connection(db) as connection:
        connection.execute(
            text("UPDATE audit_event SET actor = 'nobody' WHERE seq = :seq"), {"seq": edit_seq}
        )
        connection.execute(text("DELETE FROM audit_event WHERE seq = :seq"), {"seq": delete_seq})
        with Session(bind=connection) as session:
            rows = list(session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))))
            previous = audit.GENESIS
            for number, row in enumerate(rows, start=1):
                digest = audit.entry_hash(previous, row)
                connection.execute(
                    text(
                        "UPDATE audit_event SET prev_hash = :p, hash = :h, seq = :n WHERE id = :i"
                    ),
                    {"p": previous, "h": digest, "n": number if renumber else row.seq, "i": row.id},
                )
                previous = digest
    with db.session() as s:  # the chain alone says nothing is wrong
        walked = audit.check_chain(s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))))
    assert walked.first_break is None
    assert walked.intact == renumber  # without renumbering, the seq gap still shows


def delete_entry(db: Database, seq: int) -> None:
    with triggers_lifted(db, "audit_event"), owner_connection(db) as connection:
        connection.execute(text("DELETE FROM audit_event WHERE seq = :seq"), {"seq": seq})


def delete_checkpoint(db: Database, number: int) -> None:
    with triggers_lifted(db, "audit_checkpoint"), owner_connection(db) as connection:
        connection.execute(text("DELETE FROM audit_checkpoint WHERE number = :n"), {"n": number})


# --- the tests ----------------------------------------------------------------------------------


def test_an_intact_log_verifies_with_its_checkpoints_signed_in_the_table_and_the_file(
    db: Database, staff: Staff, signer: audit.CheckpointSigner
) -> None:
    write_entries(db, 3 * EVERY)
    clean_stop(db, signer)
    report = verify(db, staff)
    assert report.intact, problems(report)
    stored = checkpoints(db)
    # The first signed append covered the staff's entries; then one every EVERY; then the stop.
    assert [c.reason for c in stored] == [audit.INTERVAL] * (len(stored) - 1) + [audit.SHUTDOWN]
    assert [c.number for c in stored] == list(range(1, len(stored) + 1))
    assert all(b.entry_seq - a.entry_seq <= EVERY for a, b in itertools.pairwise(stored))
    assert stored[0].prev_mac == audit.GENESIS
    assert all(b.prev_mac == a.mac for a, b in itertools.pairwise(stored))
    assert report.checkpoints == len(stored) and report.unsigned == 0
    assert report.last_checkpoint is not None
    assert report.last_checkpoint.reason == audit.SHUTDOWN
    # The file holds the same checkpoints, one JSON line each, readable by the server only.
    assert [line["mac"] for line in file_lines(signer)] == [c.mac for c in stored]
    assert stat.S_IMODE(signer.file.stat().st_mode) == 0o600
    # The key is nowhere in the database.
    dumped = json.dumps([e.model_dump(mode="json") for e in entries(db)])
    dumped += json.dumps([c.model_dump(mode="json") for c in checkpoints(db)])
    assert signer.key.hex() not in dumped


def test_seq_has_no_gap_though_a_rolled_back_entry_used_an_id(
    db: Database, staff: Staff, signer: audit.CheckpointSigner
) -> None:
    write_entries(db, 2)

    def fails(session: Session) -> None:
        audit.record(session, "system:test", "test.rolled_back", "test", None, {})
        session.flush()  # the id is taken (PostgreSQL's sequence does not give it back)
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        db.run(fails)
    write_entries(db, 2)
    seqs = [e.seq for e in entries(db)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert verify(db, staff).intact


def test_the_insiders_rewrite_and_rehash_is_found_with_the_entries_affected(
    db: Database, staff: Staff, signer: audit.CheckpointSigner
) -> None:
    write_entries(db, 4 * EVERY)
    before = entries(db)
    head = before[-1].seq
    edit_seq, delete_seq = head - 12, head - 7
    rewrite(db, edit_seq=edit_seq, delete_seq=delete_seq, renumber=True)

    report = verify(db, staff)
    assert not report.intact
    assert report.first_break is None  # the chain itself holds: re-hashed
    (rewritten,) = [p for p in report.problems if p.kind == "rewritten"]
    # The change lies after the last checkpoint that still matches, up to the first that does
    # not: the edited entry is in that range.
    assert rewritten.first_seq is not None and rewritten.last_seq is not None
    assert rewritten.first_seq <= edit_seq <= rewritten.last_seq
    assert rewritten.last_seq - rewritten.first_seq < EVERY
    assert f"entries {rewritten.first_seq}..{rewritten.last_seq} were edited, deleted or" in (
        rewritten.message
    )
    assert "after it does not match either" in rewritten.message or (
        "checkpoints after it do not match either" in rewritten.message
    )


def test_the_rewrite_without_renumbering_also_shows_the_deleted_entrys_number(
    db: Database, staff: Staff, signer: audit.CheckpointSigner
) -> None:
    write_entries(db, 3 * EVERY)
    head = entries(db)[-1].seq
    rewrite(db, edit_seq=head - 9, delete_seq=head - 4, renumber=False)
    report = verify(db, staff)
    kinds = [p.kind for p in report.problems]
    assert "missing" in kinds and "rewritten" in kinds
    (missing,) = [p for p in report.problems if p.kind == "missing"]
    assert (missing.first_seq, missing.last_seq) == (head - 4, head - 4)
    assert f"audit entry {head - 4} is missing (entry {head - 5} is followed by entry " in (
        missing.message
    )


def test_a_deleted_last_entry_after_a_clean_stop_is_found(
    db: Database, staff: Staff, signer: audit.CheckpointSigner
) -> None:
    write_entries(db, EVERY + 2)
    clean_stop(db, signer)
    last = entries(db)[-1].seq
    delete_entry(db, last)
    report = verify(db, staff)
    assert not report.intact
    (truncated,) = [p for p in report.problems if p.kind == "truncated"]
    assert (truncated.first_seq, truncated.last_seq) == (last, last)
    assert f"the log ends at entry {last - 1} but checkpoint" in truncated.message
    assert "at a clean stop" in truncated.message and f"entry {last} deleted" in truncated.message


def test_entries_after_a_clean_stop_are_fine_but_one_deleted_before_it_is_not(
    db: Database, staff: Staff, signer: audit.CheckpointSigner
) -> None:
    write_entries(db, 3)
    clean_stop(db, signer)
    last = entries(db)[-1].seq
    write_entries(db, 2)  # the server started again and went on
    assert verify(db, staff).intact
    # The entry the stop signed as the last one, deleted; later entries re-linked around it.
    with triggers_lifted(db, "audit_event"), owner_connection(db) as connection:
        connection.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": last})
    report = verify(db, staff)
    assert any(p.kind == "missing" and p.first_seq == last for p in report.problems)
    assert any(p.kind == "rewritten" and p.last_seq == last for p in report.problems)


@pytest.mark.parametrize("which", ["middle", "last"])
def test_a_checkpoint_deleted_from_the_table_is_found_in_the_file(
    db: Database, staff: Staff, signer: audit.CheckpointSigner, which: str
) -> None:
    write_entries(db, 3 * EVERY)
    clean_stop(db, signer)
    stored = checkpoints(db)
    gone = stored[1] if which == "middle" else stored[-1]
    delete_checkpoint(db, gone.number)
    report = verify(db, staff)
    assert not report.intact
    found = [p for p in report.problems if p.kind == "not_in_database"]
    assert [p.last_seq for p in found] == [gone.entry_seq]
    assert f"checkpoint {gone.number} (up to entry {gone.entry_seq}" in found[0].message
    assert "is in" in found[0].message and "but not in the database" in found[0].message


def test_a_checkpoint_forged_with_another_key_is_found(
    db: Database, staff: Staff, signer: audit.CheckpointSigner, settings: Settings
) -> None:
    write_entries(db, EVERY)
    # Someone without the site's key signs a checkpoint over a rewritten log with their own,
    # writes it in the table and even in the file.
    forger = audit.CheckpointSigner(os.urandom(32), signer.file, EVERY)
    forger_db = Database(settings.database)
    forger_db.sign_audit_checkpoints(forger)
    try:
        forger_db.run(lambda s: audit.write_checkpoint(s, forger, audit.INTERVAL))
    finally:
        forger_db.dispose()
    report = verify(db, staff)
    forged = [p for p in report.problems if p.kind == "forged"]
    number = checkpoints(db)[-1].number
    assert [p.message.split(" is not")[0] for p in forged] == [
        f"checkpoint {number} in the database",
        f"checkpoint {number} in {signer.file}",
    ]
    assert "not signed with this site's key: forged or altered" in forged[0].message


def test_the_checkpoint_file_and_the_table_must_agree(
    db: Database, staff: Staff, signer: audit.CheckpointSigner
) -> None:
    write_entries(db, 3 * EVERY)
    lines = signer.file.read_text().splitlines(keepends=True)
    assert len(lines) >= 3
    # A line taken out of the file (not the last one: the server's start would write it back).
    signer.file.write_text("".join(lines[:1] + lines[2:]))
    report = verify(db, staff)
    assert [p.kind for p in report.problems] == ["not_in_file"]
    assert report.problems[0].message.startswith("checkpoint 2 in the database but not in")
    # A line altered in the file (verify's own entries may have added lines since).
    lines = [lines[0], lines[1], *signer.file.read_text().splitlines(keepends=True)[1:]]
    altered = json.loads(lines[1]) | {"entry_seq": 1}
    signer.file.write_text(lines[0] + json.dumps(altered) + "\n" + "".join(lines[2:]))
    report = verify(db, staff)
    assert sorted(p.kind for p in report.problems) == ["differs", "forged"]
    assert "checkpoint 2 differs between the database and" in problems(report)[-1]
    # The whole file gone.
    signer.file.unlink()
    report = verify(db, staff)
    assert [p.kind for p in report.problems] == ["file_missing"]
    assert "is missing, but the database holds" in report.problems[0].message


def test_a_checkpoint_committed_but_not_written_to_the_file_is_written_at_the_next_start(
    db: Database, staff: Staff, signer: audit.CheckpointSigner
) -> None:
    write_entries(db, 2 * EVERY)
    lines = signer.file.read_text().splitlines(keepends=True)
    signer.file.write_text("".join(lines[:-1]))  # the server stopped between commit and line
    # What the server's start does before anything else (components.sign_audit_checkpoints).
    assert db.run(lambda s: audit.catch_up_checkpoint_file(s, signer)) == 1
    assert signer.file.read_text().splitlines(keepends=True) == lines
    assert verify(db, staff).intact
    # Only what is past the file's end: a line taken out of the middle stays missing.
    lines = signer.file.read_text().splitlines(keepends=True)
    signer.file.write_text("".join(lines[:1] + lines[2:]))
    assert db.run(lambda s: audit.catch_up_checkpoint_file(s, signer)) == 0
    assert [p.kind for p in verify(db, staff).problems] == ["not_in_file"]


def test_a_rolled_back_checkpoint_leaves_no_row_and_no_line(
    db: Database, staff: Staff, signer: audit.CheckpointSigner
) -> None:
    write_entries(db, 1)  # the first signed append: checkpoint 1
    before = (len(checkpoints(db)), len(file_lines(signer)))

    def fails(session: Session) -> None:
        for n in range(EVERY):
            audit.record(session, "system:test", "test.rolled_back", "test", n, {})
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        db.run(fails)
    assert (len(checkpoints(db)), len(file_lines(signer))) == before

    def in_savepoint(session: Session) -> None:
        try:
            with session.begin_nested():
                for n in range(EVERY):
                    audit.record(session, "system:test", "test.undone", "test", n, {})
                session.flush()
                raise RuntimeError("savepoint rolled back")
        except RuntimeError:
            pass
        audit.record(session, "system:test", "test.kept", "test", None, {})

    db.run(in_savepoint)
    assert (len(checkpoints(db)), len(file_lines(signer))) == before
    assert verify(db, staff).intact


def test_verify_refuses_clearly_without_the_key(
    db: Database, staff: Staff, signer: audit.CheckpointSigner, settings: Settings
) -> None:
    write_entries(db, 2)
    site_secrets.key_path(settings.secrets, site_secrets.AUDIT_KEY).unlink()
    with pytest.raises(site_secrets.SiteSecretError, match=r"audit-checkpoints\.key is missing"):
        verify(db, staff)


def test_a_chain_from_before_checkpoints_gets_its_first_at_the_servers_next_append(
    db: Database, staff: Staff, settings: Settings
) -> None:
    write_entries(db, 3)  # no signer yet: an upgraded site's old entries
    report = verify(db, staff)
    assert report.intact and report.checkpoints == 0 and report.unsigned == report.head_seq
    settings.audit.checkpoint_every = EVERY
    signer = audit.CheckpointSigner.for_site(settings)
    db.sign_audit_checkpoints(signer)
    write_entries(db, 1)
    (first,) = checkpoints(db)
    assert first.number == 1 and first.entry_seq == entries(db)[-1].seq  # all up to it
    assert verify(db, staff).intact


def test_entries_edited_in_place_are_one_line_per_run_with_their_range(
    db: Database, staff: Staff, signer: audit.CheckpointSigner
) -> None:
    write_entries(db, 2 * EVERY)
    head = entries(db)[-1].seq
    with triggers_lifted(db, "audit_event"), owner_connection(db) as connection:
        connection.execute(
            text("UPDATE audit_event SET actor = 'nobody' WHERE seq BETWEEN :a AND :b"),
            {"a": head - 6, "b": head - 4},
        )
        connection.execute(
            text("UPDATE audit_event SET allowed = :no WHERE seq = :s"),
            {"no": False, "s": head - 1},
        )
    report = verify(db, staff)
    assert [(p.kind, p.first_seq, p.last_seq) for p in report.problems] == [
        ("edited", head - 6, head - 4),
        ("edited", head - 1, head - 1),
    ]
    assert problems(report)[0] == (
        f"audit entries {head - 6}..{head - 4} were edited after they were written"
    )
    assert report.first_break is not None and report.first_break.seq == head - 6
