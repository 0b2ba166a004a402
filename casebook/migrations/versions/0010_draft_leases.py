"""Draft leases: complaint_case.draft_lease_agent_id and draft_lease_until

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 09:00:00.000000

Opening a draft takes it for a while (casebook.drafts) instead of assigning the case for ever.
Drafts an agent opened before this keep their assignment, which no longer locks them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# complaint_case must never be rebuilt on SQLite (dropping the old copy breaks the foreign keys
# that point at it, as in 0004 and 0006), and the batch mode rebuilds it for a foreign key: SQLite
# adds a column with its REFERENCES in place.


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE complaint_case ADD COLUMN draft_lease_agent_id INTEGER REFERENCES agent (id)"
        )
        op.execute("ALTER TABLE complaint_case ADD COLUMN draft_lease_until DATETIME")
        return
    op.add_column(
        "complaint_case",
        sa.Column("draft_lease_agent_id", sa.Integer(), sa.ForeignKey("agent.id"), nullable=True),
    )
    op.add_column(
        "complaint_case", sa.Column("draft_lease_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # In place (SQLite 3.35+), for the same reason; the REFERENCES goes with its column.
        op.execute("ALTER TABLE complaint_case DROP COLUMN draft_lease_until")
        op.execute("ALTER TABLE complaint_case DROP COLUMN draft_lease_agent_id")
        return
    op.drop_column("complaint_case", "draft_lease_until")
    op.drop_column("complaint_case", "draft_lease_agent_id")
