"""Alembic environment: runs on the connection casebook.db hands it (see upgrade_schema)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import casebook.models  # noqa: F401  (registers every table on SQLModel.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds tables instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
