"""Signed audit checkpoints: audit_event.seq (gap-free) and the audit_checkpoint table

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 09:00:00.000000

Existing entries get their seq in id order (the order they were chained in). Existing chains
get no checkpoint here (the migration does not hold the server's key): the server signs the
first one at its next append, covering every entry before it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite adds the column in place (ALTER TABLE ADD COLUMN, NOT NULL with a plain-string
# default): a rebuild of audit_event would drop its append-only triggers.

_SQLITE_CHECKPOINT_TRIGGERS = [
    f"""CREATE TRIGGER audit_checkpoint_no_{verb.lower()} BEFORE {verb} ON audit_checkpoint
    BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END"""
    for verb in ("UPDATE", "DELETE")
]
_PG_CHECKPOINT_FUNCTION = """CREATE FUNCTION audit_checkpoint_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'audit_checkpoint is append-only'; END; $$ LANGUAGE plpgsql"""
_PG_CHECKPOINT_TRIGGER = """CREATE TRIGGER audit_checkpoint_append_only
BEFORE UPDATE OR DELETE ON audit_checkpoint
FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_append_only()"""

# Numbers in id order, in one statement (SQLite 3.33+ and PostgreSQL both take UPDATE ... FROM).
_NUMBER_IN_ID_ORDER = """UPDATE audit_event SET seq = numbered.n
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_event) AS numbered
WHERE audit_event.id = numbered.id"""


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=False, server_default="0"))
    with _append_only_lifted():
        op.execute(_NUMBER_IN_ID_ORDER)
    if not sqlite:
        # The code always gives seq; an insert that does not is refused rather than numbered 0.
        op.execute("ALTER TABLE audit_event ALTER COLUMN seq DROP DEFAULT")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_seq"), ["seq"], unique=True)

    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry_seq", sa.Integer(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("prev_mac", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_checkpoint", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_checkpoint_number"), ["number"], unique=True)
    if sqlite:
        for statement in _SQLITE_CHECKPOINT_TRIGGERS:
            op.execute(statement)
    else:
        op.execute(_PG_CHECKPOINT_FUNCTION)
        op.execute(_PG_CHECKPOINT_TRIGGER)


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


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.execute("DROP TRIGGER audit_checkpoint_append_only ON audit_checkpoint")
        op.execute("DROP FUNCTION audit_checkpoint_append_only()")
    with op.batch_alter_table("audit_checkpoint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_checkpoint_number"))
    op.drop_table("audit_checkpoint")  # its SQLite triggers go with it
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_seq"))
    if sqlite:
        # In place (SQLite 3.35+): the batch mode's copy would drop the append-only triggers.
        op.execute("ALTER TABLE audit_event DROP COLUMN seq")
        return
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("seq")
