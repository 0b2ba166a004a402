"""Case search: the word index of confirmed complaints (case_term), and indexes on what listings
filter by, each with created_at (department, agent, unresolved)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 09:00:00.000000

Cases confirmed before this revision get their terms here, from their confirmed text, with the
rule that indexes new ones (casebook.case_terms), so search finds them alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from casebook.case_terms import terms_of

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Cases read and indexed per round trip while filling the terms of existing cases.
BATCH = 5_000

_case = sa.table(
    "complaint_case",
    sa.column("id", sa.Integer()),
    sa.column("confirmed_text", sa.Text()),
)
_term = sa.table("case_term", sa.column("term", sa.String()), sa.column("case_id", sa.Integer()))


def upgrade() -> None:
    op.create_table(
        "case_term",
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["complaint_case.id"]),
        sa.PrimaryKeyConstraint("term", "case_id"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_case_term_case_id", "case_term", ["case_id"])
    # Plain CREATE/DROP INDEX (no batch): SQLite does them in place, the table is not copied.
    op.drop_index("ix_complaint_case_department", table_name="complaint_case")
    op.drop_index("ix_complaint_case_assigned_agent_id", table_name="complaint_case")
    op.create_index("ix_case_department_created", "complaint_case", ["department", "created_at"])
    op.create_index("ix_case_agent_created", "complaint_case", ["assigned_agent_id", "created_at"])
    op.create_index("ix_case_unresolved_created", "complaint_case", ["resolved_at", "created_at"])
    _index_confirmed_cases()


def _index_confirmed_cases() -> None:
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(_case.c.id, _case.c.confirmed_text)
            .where(_case.c.id > last, _case.c.confirmed_text.is_not(None))
            .order_by(_case.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        terms = [
            {"term": term, "case_id": case_id} for case_id, text in rows for term in terms_of(text)
        ]
        if terms:
            connection.execute(sa.insert(_term), terms)
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_case_unresolved_created", table_name="complaint_case")
    op.drop_index("ix_case_agent_created", table_name="complaint_case")
    op.drop_index("ix_case_department_created", table_name="complaint_case")
    op.create_index("ix_complaint_case_assigned_agent_id", "complaint_case", ["assigned_agent_id"])
    op.create_index("ix_complaint_case_department", "complaint_case", ["department"])
    op.drop_index("ix_case_term_case_id", table_name="case_term")
    op.drop_table("case_term")
