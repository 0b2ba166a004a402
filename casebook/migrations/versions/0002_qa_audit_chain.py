"""QA sampling, recording marks and the hash-chained audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 20:10:00.000000
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from sqlmodel import Session, col, select

from casebook.audit import GENESIS, entry_hash
from casebook.models import AuditEvent

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite adds these columns in place (ALTER TABLE ADD COLUMN): the batch mode never rebuilds
# audit_event here, so its append-only triggers stay.


def upgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recording_missing", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("prev_hash", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("hash", sa.String(length=64), nullable=False, server_default="")
        )
    _chain_existing_entries()
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_prev_hash"), ["prev_hash"], unique=True)

    op.create_table(
        "qa_sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("stratum", sa.String(length=80), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recording.id"]),
        sa.ForeignKeyConstraint(["reviewer_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recording_id", "reviewer_id"),
    )
    with op.batch_alter_table("qa_sample", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_sample_recording_id"), ["recording_id"])
        batch_op.create_index(batch_op.f("ix_qa_sample_reviewer_id"), ["reviewer_id"])


@contextmanager
def _append_only_lifted() -> Iterator[None]:
    """Lift audit_event's append-only triggers (0001) for one step of this migration, and put
    them back as they were."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        yield
        op.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
        return
    find = sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t")
    saved = bind.execute(find, {"t": "audit_event"}).all()
    for name, _sql in saved:
        op.execute(f"DROP TRIGGER {name}")
    yield
    for _name, sql in saved:
        op.execute(sql)


def _chain_existing_entries() -> None:
    """Entries written before the chain existed are chained now, in id order, with the same
    function that verifies them."""
    bind = op.get_bind()
    # Only the columns this revision knows: a later model may have more.
    columns = ("id", "at", "actor", "action", "object_type", "object_id", "allowed", "detail")
    query = select(*(getattr(AuditEvent, name) for name in columns)).order_by(col(AuditEvent.id))
    rows = Session(bind=bind).execute(query).all()
    if not rows:
        return
    update = sa.text("UPDATE audit_event SET prev_hash = :prev, hash = :hash WHERE id = :id")
    previous = GENESIS
    with _append_only_lifted():
        for row in rows:
            digest = entry_hash(previous, AuditEvent(**row._mapping))
            bind.execute(update, {"prev": previous, "hash": digest, "id": row.id})
            previous = digest


def downgrade() -> None:
    with op.batch_alter_table("qa_sample", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_sample_reviewer_id"))
        batch_op.drop_index(batch_op.f("ix_qa_sample_recording_id"))
    op.drop_table("qa_sample")
    # SQLite rebuilds the table to drop columns, which would drop its triggers with it.
    with _append_only_lifted(), op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_prev_hash"))
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("recording_missing")
