"""Sign-in: agents' passwords and failure counters, sessions, failed sign-ins per address

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00.000000

Existing agents get no password (password_hash NULL): they cannot sign in until an admin resets
their password, which gives them a one-time password.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite adds these columns in place (ALTER TABLE ADD COLUMN): agent must never be rebuilt,
# since dropping the old copy breaks the foreign keys that point at it (case, callback, ...).
# So the server defaults are plain strings ("0" is false for PostgreSQL too): an SQL expression
# such as sa.false() makes the batch mode copy the table.


def upgrade() -> None:
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("password_must_change", sa.Boolean(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("password_set_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("failed_signins", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("last_failed_signin_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "signin_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idle_minutes", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_why", sa.String(length=32), nullable=True),
        sa.Column("address", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signin_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signin_session_agent_id"), ["agent_id"])
        batch_op.create_index(
            batch_op.f("ix_signin_session_token_sha256"), ["token_sha256"], unique=True
        )

    op.create_table(
        "signin_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signin_failure", schema=None) as batch_op:
        batch_op.create_index("ix_signin_failure_address_at", ["address", "at"])


def downgrade() -> None:
    with op.batch_alter_table("signin_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_signin_failure_address_at")
    op.drop_table("signin_failure")
    with op.batch_alter_table("signin_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signin_session_token_sha256"))
        batch_op.drop_index(batch_op.f("ix_signin_session_agent_id"))
    op.drop_table("signin_session")
    columns = (
        "locked_at",
        "last_failed_signin_at",
        "failed_signins",
        "password_set_at",
        "password_must_change",
        "password_hash",
    )
    if op.get_bind().dialect.name == "sqlite":
        # In place (SQLite 3.35+): the batch mode's copy-and-drop of agent would break the
        # foreign keys that point at it.
        for column in columns:
            op.execute(f"ALTER TABLE agent DROP COLUMN {column}")
        return
    with op.batch_alter_table("agent", schema=None) as batch_op:
        for column in columns:
            batch_op.drop_column(column)
