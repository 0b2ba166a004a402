"""Case work: internal notes on a case (case_note)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-14 09:00:00.000000

Notes are written once and never changed: the runtime role may only add and read them
(casebook/roles.py). Nothing else changes: the case's history is read from the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        # Bounded by casebook.limits (models.NOTE_TEXT), like the other notes.
        sa.Column("text", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["complaint_case.id"]),
        sa.ForeignKeyConstraint(["author_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_note", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_note_case_id"), ["case_id"])


def downgrade() -> None:
    with op.batch_alter_table("case_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_note_case_id"))
    op.drop_table("case_note")
