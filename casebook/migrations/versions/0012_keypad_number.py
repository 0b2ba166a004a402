"""Keypad numbers: complaint_case.keypad_number and its index with created_at

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-11 09:00:00.000000

The account or line number a caller keys in the IVR after their message (issue 19). Cases
registered before this have none. A plain ADD COLUMN (no batch): SQLite adds it in place, the
table is not rebuilt (see 0010).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("complaint_case", sa.Column("keypad_number", sa.String(length=20), nullable=True))
    op.create_index(
        "ix_case_keypad_number_created", "complaint_case", ["keypad_number", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_case_keypad_number_created", table_name="complaint_case")
    # In place on SQLite too (3.35+, the index gone first): the table is not rebuilt.
    op.drop_column("complaint_case", "keypad_number")
