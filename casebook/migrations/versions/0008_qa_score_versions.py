"""QA score versions and reproducible samples: qa_review.version, qa_sample's period

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 13:30:00.000000

Scoring a recording again adds the next version of its score instead of replacing the reviewer's
earlier one: qa_review gets ``version`` (1, 2, ... per recording, existing reviews numbered in
the order they were written) and is unique per (recording, version) instead of per (recording,
reviewer). A sample is named by its seed: qa_sample keeps the period it was drawn over and is
unique per (reviewer, seed, recording), so a recording can be in several of a reviewer's
samples and a repeated seed finds its own draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0001 and 0002 left these unique constraints unnamed: PostgreSQL named them itself; SQLite's
# batch mode names them by this convention when it reflects the table to rebuild it (nothing
# points at either table, so the rebuild breaks no foreign key). A downgrade names them the
# same way, so upgrading again finds them.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
OLD_UNIQUE = {
    "qa_review": ("qa_review_recording_id_reviewer_id_key", "uq_qa_review_recording_id"),
    "qa_sample": ("qa_sample_recording_id_reviewer_id_key", "uq_qa_sample_recording_id"),
}

NUMBER_VERSIONS = """
UPDATE qa_review SET version = (
    SELECT COUNT(*) FROM qa_review AS earlier
    WHERE earlier.recording_id = qa_review.recording_id AND earlier.id <= qa_review.id
)
"""
# The old schema holds one review per recording and reviewer: each reviewer's latest stays.
KEEP_LATEST_PER_REVIEWER = """
DELETE FROM qa_review WHERE EXISTS (
    SELECT 1 FROM qa_review AS later
    WHERE later.recording_id = qa_review.recording_id
      AND later.reviewer_id = qa_review.reviewer_id AND later.id > qa_review.id
)
"""
# And one draw per recording and reviewer: the first.
KEEP_FIRST_DRAW = """
DELETE FROM qa_sample WHERE EXISTS (
    SELECT 1 FROM qa_sample AS earlier
    WHERE earlier.recording_id = qa_sample.recording_id
      AND earlier.reviewer_id = qa_sample.reviewer_id AND earlier.id < qa_sample.id
)
"""


def _old_unique(table: str) -> str:
    postgresql, sqlite = OLD_UNIQUE[table]
    return sqlite if op.get_bind().dialect.name == "sqlite" else postgresql


def upgrade() -> None:
    # Added in place first (a plain string default), numbered, then the table rebuilt once.
    with op.batch_alter_table("qa_review", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.execute(NUMBER_VERSIONS)
    with op.batch_alter_table("qa_review", schema=None, naming_convention=SQLITE_NAMES) as batch_op:
        batch_op.drop_constraint(_old_unique("qa_review"), type_="unique")
        batch_op.alter_column("version", server_default=None)
        batch_op.create_unique_constraint(
            "uq_qa_review_recording_version", ["recording_id", "version"]
        )

    with op.batch_alter_table("qa_sample", schema=None, naming_convention=SQLITE_NAMES) as batch_op:
        batch_op.add_column(sa.Column("period_start", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("period_end", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(_old_unique("qa_sample"), type_="unique")
        batch_op.create_unique_constraint(
            "uq_qa_sample_reviewer_seed_recording", ["reviewer_id", "seed", "recording_id"]
        )


def downgrade() -> None:
    op.execute(KEEP_FIRST_DRAW)
    with op.batch_alter_table("qa_sample", schema=None) as batch_op:
        batch_op.drop_constraint("uq_qa_sample_reviewer_seed_recording", type_="unique")
        batch_op.create_unique_constraint(_old_unique("qa_sample"), ["recording_id", "reviewer_id"])
        batch_op.drop_column("period_end")
        batch_op.drop_column("period_start")
    op.execute(KEEP_LATEST_PER_REVIEWER)
    with op.batch_alter_table("qa_review", schema=None) as batch_op:
        batch_op.drop_constraint("uq_qa_review_recording_version", type_="unique")
        batch_op.create_unique_constraint(_old_unique("qa_review"), ["recording_id", "reviewer_id"])
        batch_op.drop_column("version")
