"""Batch writes without the ORM: the listener stores hundreds of calls a minute at peak, and
building and flushing one object per row, or SQLAlchemy's per-row bookkeeping, would cost more
than the writes themselves."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic_core import PydanticUndefined
from sqlalchemy import Column, ColumnElement, Connection, Dialect, Insert, Table, UpdateBase
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import Session, SQLModel

from casebook.limits import check_row

T = TypeVar("T")

# Keys per IN (...) query: well under SQLite's and PostgreSQL's limits on bound parameters.
_KEYS_PER_QUERY = 500


def chunked(keys: Iterable[T]) -> list[list[T]]:
    """Distinct ``keys`` in first-seen order, in lists short enough for one IN (...) query."""
    distinct = list(dict.fromkeys(keys))
    return [distinct[n : n + _KEYS_PER_QUERY] for n in range(0, len(distinct), _KEYS_PER_QUERY)]


def ids_by(
    connection: Connection, key: Column[Any], keys: Iterable[T], *where: ColumnElement[bool]
) -> dict[T, int]:
    """The ids of the rows whose ``key`` is in ``keys`` (and that match ``where``), by key:
    how rows just inserted with ``insert_rows`` are found again."""
    ids: dict[T, int] = {}
    for chunk in chunked(keys):
        query = sa.select(key, key.table.c.id).where(key.in_(chunk), *where)
        ids |= dict(connection.execute(query).all())
    return ids


@cache
def _field_defaults(model: type[SQLModel]) -> dict[str, Callable[[], Any]]:
    makers: dict[str, Callable[[], Any]] = {}
    keys = {column.name for column in model.__table__.primary_key}  # type: ignore[attr-defined]
    for name, field in model.model_fields.items():
        if name in keys:
            continue  # the database numbers the rows
        if field.default_factory is not None:
            makers[name] = field.default_factory  # type: ignore[assignment]
        elif field.default is not PydanticUndefined:
            makers[name] = partial(lambda value: value, field.default)
    return makers


def with_defaults(model: type[SQLModel], row: dict[str, Any]) -> dict[str, Any]:
    """``row`` completed with the model's own field defaults, as constructing it would, and
    checked against the model's limits as an ORM write is (casebook.limits)."""
    made = {name: make() for name, make in _field_defaults(model).items() if name not in row}
    return check_row(model, made | row)


def insert_rows(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    """Insert new rows of a table model in one executemany, each completed with the model's
    defaults (``with_defaults``): for batches, where building and flushing one ORM object per
    row costs more than the write. Load them back by a unique key when they are needed."""
    if not rows:
        return
    session.flush()  # what was added before goes in first
    statement = _insert_statement(model.__table__)  # type: ignore[attr-defined]
    execute_many(session.connection(), statement, [with_defaults(model, row) for row in rows])


@cache
def _insert_statement(table: Table) -> Insert:
    return table.insert()


@dataclass(frozen=True)
class _DriverStatement:
    """A statement as the database driver takes it: its SQL, and for each of its parameters
    in the driver's order, the row key that gives it and how the column's type converts it."""

    sql: str
    keys: tuple[str, ...]
    converters: tuple[Callable[[Any], Any] | None, ...]
    positional: bool

    def parameters(self, row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = tuple(
            convert(row[key]) if convert is not None else row[key]
            for key, convert in zip(self.keys, self.converters, strict=True)
        )
        return values if self.positional else dict(zip(self.keys, values, strict=True))


@lru_cache(maxsize=64)
def _for_driver(statement: UpdateBase, dialect: Dialect, keys: tuple[str, ...]) -> _DriverStatement:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    assert isinstance(compiled, SQLCompiler)  # a DML statement
    names = compiled.positiontup if compiled.positional else list(compiled.binds)
    missing = sorted(set(names or ()) - set(keys))
    if missing or compiled.escaped_bind_names or compiled.post_compile_params:
        # Rows give every parameter by its plain name; anything else is for ``execute``.
        raise ValueError(f"execute_many cannot fill {missing or 'these parameters'}: {compiled}")
    binds = [compiled.binds[name] for name in names or ()]
    return _DriverStatement(
        sql=compiled.string,
        keys=tuple(names or ()),
        converters=tuple(b.type.dialect_impl(dialect).bind_processor(dialect) for b in binds),
        positional=compiled.positional,
    )


def execute_many(
    connection: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]
) -> None:
    """``connection.execute(statement, rows)`` for the batches the listener writes: the
    statement is compiled once per dialect and set of row keys (pass one built once, not anew
    per call), and each row goes to the driver converted by its columns' types, without
    SQLAlchemy's per-row bookkeeping (measured: about half the time of a 200-row audit insert;
    the conversions themselves remain). Every row has the keys of the first, as for
    ``execute``; errors are SQLAlchemy's, as for ``execute``."""
    if not rows:
        return
    driver = _for_driver(statement, connection.dialect, tuple(rows[0]))
    connection.exec_driver_sql(driver.sql, [driver.parameters(row) for row in rows])
