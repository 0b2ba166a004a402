"""Versions for compare-and-set: complaint_case.version and callback.version

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09 09:00:00.000000

Every change to a case or a callback is written as ``UPDATE ... WHERE version = <the version
read>`` and counts the version on (casebook.concurrency), so of two changes decided on the same
version only one is written. Existing rows start at 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("complaint_case", "callback")

# As in 0004: SQLite adds the column in place (ALTER TABLE ADD COLUMN) only with a plain string
# server default; anything else makes the batch mode copy the table, and dropping the old copy
# breaks the foreign keys that point at it (call, recording, follow_up, callback_attempt, ...).


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("version", sa.Integer(), nullable=False, server_default="1")
            )


def downgrade() -> None:
    for table in TABLES:
        if op.get_bind().dialect.name == "sqlite":
            # In place (SQLite 3.35+), for the same reason as above.
            op.execute(f"ALTER TABLE {table} DROP COLUMN version")
            continue
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("version")
