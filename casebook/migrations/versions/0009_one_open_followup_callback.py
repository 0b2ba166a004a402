"""At most one open follow-up callback per case: callback.cancel_reason, callback.cancelled_at
and a partial unique index

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 13:40:00.000000

Before, each resolution asked for a follow-up callback and none was ever cancelled, so a site
may hold several open ones for a case, and open ones for cases closed or back at work. Those are
cancelled here, as the casebook cancels them from now on (casebook.callbacks), with the reason
kept on the row (the migration writes no audit entries: the owner role signs none). Of a case
still waiting for the caller's verdict, the one an agent holds is kept, else the newest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_callback_open_followup"
OPEN_FOLLOWUP = "reason = 'follow_up' AND status IN ('pending', 'assigned')"

# Open follow-ups of cases that no longer wait for the caller's verdict.
_CASE_MOVED_ON = f"""
UPDATE callback
SET status = 'cancelled', cancelled_at = :now, version = version + 1,
    cancel_reason = 'case ' || (
        SELECT complaint_case.status FROM complaint_case WHERE complaint_case.id = callback.case_id
    )
WHERE {OPEN_FOLLOWUP} AND case_id IN (
    SELECT id FROM complaint_case WHERE status NOT IN ('resolved', 'follow_up')
)
"""

# Of several open follow-ups of one case: all but the one an agent holds, else the newest.
_DUPLICATES = f"""
UPDATE callback
SET status = 'cancelled', cancelled_at = :now, version = version + 1,
    cancel_reason = 'another follow-up callback is open'
WHERE {OPEN_FOLLOWUP} AND case_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM callback AS other
    WHERE other.case_id = callback.case_id AND other.id <> callback.id
      AND other.reason = 'follow_up' AND other.status IN ('pending', 'assigned')
      AND (
        (other.status = 'assigned' AND callback.status = 'pending')
        OR (other.status = callback.status AND other.id > callback.id)
      )
)
"""


def upgrade() -> None:
    with op.batch_alter_table("callback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancel_reason", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    now = sa.bindparam("now", datetime.now(UTC), type_=sa.DateTime(timezone=True))
    for statement in (_CASE_MOVED_ON, _DUPLICATES):
        op.execute(sa.text(statement).bindparams(now))
    where = sa.text(OPEN_FOLLOWUP)
    op.create_index(
        INDEX, "callback", ["case_id"], unique=True, sqlite_where=where, postgresql_where=where
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="callback")
    if op.get_bind().dialect.name == "sqlite":
        # In place (SQLite 3.35+): a batch copy of the table breaks the foreign keys to it (0006).
        op.execute("ALTER TABLE callback DROP COLUMN cancelled_at")
        op.execute("ALTER TABLE callback DROP COLUMN cancel_reason")
        return
    with op.batch_alter_table("callback", schema=None) as batch_op:
        batch_op.drop_column("cancelled_at")
        batch_op.drop_column("cancel_reason")
