"""Bounded input (issue 17, item 5): every text the casebook stores has a length limit, and
this module checks it before anything reaches the database.

The rule is the models' (casebook.models): a text field's ``max_length`` (a VARCHAR(n) column,
or a TEXT column bounded here only: ``bounded_text``, so no migration was needed), and for a
JSON column the limits its column's ``info`` names (``JSON_TEXT``, ``JSON_CHARS``). The check
is one mechanism with two doors:

- every ORM write: a ``before_flush`` listener on every Session checks the new rows and the
  changed fields of the others (a row stored before the limits, too long, can still have its
  other fields changed);
- every batch row (``casebook.batch.with_defaults``, the listener's and the ingest's inserts),
  through ``check_row``.

A text over its limit, or holding what no PostgreSQL text holds (a NUL) or no encoder writes (a
lone surrogate), or a field of digits (``digits_field``: what a caller keyed) holding anything
else, is refused with ``TextRefused``: one line naming the field and the limit, the whole unit
of work rolled back, nothing stored; the API answers 400. So SQLite (which ignores VARCHAR
lengths and would store megabytes) and PostgreSQL (which would fail with a driver error, a 500)
refuse alike. A field marked ``CUT`` holds machine text (what Asterisk said of a hang-up,
a job's error): too long, it is cut with a visible mark instead, never losing the write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from annotated_types import MaxLen
from sqlalchemy import event, inspect
from sqlmodel import AutoString, Field, Session, SQLModel

from casebook.errors import CasebookError

# Column info keys: set on a column by the models, read here.
CUT = "cut_to_limit"  # machine text: cut, not refused
JSON_TEXT = "json_text_limit"  # a JSON value: the longest text anywhere in it
JSON_CHARS = "json_chars_limit"  # a JSON value: its length written as JSON
DIGITS = "digits_only"  # keyed on a phone: ASCII digits and nothing else

# The mark a cut text ends with.
_CUT_MARK = "…"


class TextRefused(CasebookError):
    """A text too long for its field, or one no database stores alike: refused, one line."""


def digits_field(limit: int) -> Any:
    """A text of at most ``limit`` ASCII digits (what a caller keyed: no sign, no space)."""
    return Field(default=None, max_length=limit, sa_column_kwargs={"info": {DIGITS: True}})


def bounded_text(limit: int, *, cut: bool = False, default: str | None = None) -> Any:
    """A text field with no length in the schema (TEXT / VARCHAR without a length, as the
    migrations made it) bounded to ``limit`` characters here; ``cut``: machine text, cut."""
    info = {CUT: True} if cut else {}
    return Field(
        default=default, max_length=limit, sa_type=AutoString, sa_column_kwargs={"info": info}
    )


@dataclass(frozen=True)
class TextLimit:
    field: str
    max_chars: int
    cut: bool
    digits: bool = False


@dataclass(frozen=True)
class JsonLimit:
    field: str
    max_text: int | None
    max_chars: int | None


@dataclass(frozen=True)
class ModelLimits:
    table: str
    texts: tuple[TextLimit, ...]
    json: tuple[JsonLimit, ...]


@cache
def limits_of(model: type[SQLModel]) -> ModelLimits:
    """The limits ``model`` declares (read once per table model)."""
    table = model.__table__  # type: ignore[attr-defined]
    texts: list[TextLimit] = []
    values: list[JsonLimit] = []
    for name, field in model.model_fields.items():
        column = table.c.get(name)
        info = column.info if column is not None else {}
        lengths = [item.max_length for item in field.metadata if isinstance(item, MaxLen)]
        if lengths:
            texts.append(TextLimit(name, min(lengths), bool(info.get(CUT)), bool(info.get(DIGITS))))
        if JSON_TEXT in info or JSON_CHARS in info:
            values.append(JsonLimit(name, info.get(JSON_TEXT), info.get(JSON_CHARS)))
    return ModelLimits(str(table.name), tuple(texts), tuple(values))


def _refuse(table: str, field: str, why: str) -> TextRefused:
    return TextRefused(f"نص غير مقبول (text refused): {table}.{field} {why}")


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked."""
    return text if len(text) <= limit else text[: max(limit - len(_CUT_MARK), 0)] + _CUT_MARK


def _checked_text(table: str, rule: TextLimit, value: str) -> str:
    if len(value) > rule.max_chars:
        if rule.cut:
            value = cut(value, rule.max_chars)
        else:
            raise _refuse(
                table, rule.field, f"has {len(value)} characters, at most {rule.max_chars}"
            )
    if rule.digits and not (value.isascii() and value.isdigit()):
        raise _refuse(table, rule.field, "must be digits 0-9 only")
    _check_storable(table, rule.field, value)
    return value


def _check_storable(table: str, field: str, value: str) -> None:
    if value.isascii():
        if "\x00" in value:
            raise _refuse(table, field, "holds a NUL character, which no text column stores")
        return
    if "\x00" in value:
        raise _refuse(table, field, "holds a NUL character, which no text column stores")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(table, field, "is not valid text (a lone surrogate)") from None


def _longest_text(value: Any, where: str = "") -> tuple[str, str]:
    """(where, text) of the longest text in a JSON value: its keys and its strings."""
    best = (where, value) if isinstance(value, str) else ("", "")
    items: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and len(key) > len(best[1]):
                best = (where, key)
            items.append((f"{where}.{key}" if where else str(key), item))
    elif isinstance(value, (list, tuple)):
        items = [(f"{where}[{index}]", item) for index, item in enumerate(value)]
    for place, item in items:
        found = _longest_text(item, place)
        if len(found[1]) > len(best[1]):
            best = found
    return best


def _check_json(table: str, rule: JsonLimit, value: Any) -> None:
    if value is None:
        return
    if rule.max_text is not None:
        where, text = _longest_text(value)
        if len(text) > rule.max_text:
            named = f"'{where}' " if where else ""
            raise _refuse(
                table,
                rule.field,
                f"{named}has {len(text)} characters, at most {rule.max_text}",
            )
    if rule.max_chars is not None:
        written = len(json.dumps(value, ensure_ascii=False, default=str))
        if written > rule.max_chars:
            raise _refuse(
                table, rule.field, f"is {written} characters as JSON, at most {rule.max_chars}"
            )


def _cut_texts(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return cut(value, limit)
    if isinstance(value, dict):
        return {cut(str(key), limit): _cut_texts(item, limit) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cut_texts(item, limit) for item in value]
    return value


def fitted_json(model: type[SQLModel], field: str, value: Any) -> Any:
    """``value`` for ``model``'s JSON ``field`` with every text cut to the field's limit: for
    what must be stored whatever a person typed into it (the audit entry of a refusal: a
    refusal refused for its typed reason would leave no trace)."""
    for rule in limits_of(model).json:
        if rule.field == field and rule.max_text is not None:
            return _cut_texts(value, rule.max_text)
    return value


def check_row(model: type[SQLModel], row: dict[str, Any]) -> dict[str, Any]:
    """A batch row (column name -> value) checked against ``model``'s limits, a ``CUT``
    field cut in place; raises ``TextRefused``."""
    limits = limits_of(model)
    for rule in limits.texts:
        value = row.get(rule.field)
        if isinstance(value, str):
            row[rule.field] = _checked_text(limits.table, rule, value)
    for json_rule in limits.json:
        if json_rule.field in row:
            _check_json(limits.table, json_rule, row[json_rule.field])
    return row


def check_object(obj: SQLModel, *, changed_only: bool) -> None:
    """A row about to be written; with ``changed_only``, only the fields set since it was
    loaded."""
    limits = limits_of(type(obj))
    state = inspect(obj) if changed_only else None

    def changed(field: str) -> bool:
        return state is None or state.attrs[field].history.has_changes()

    for rule in limits.texts:
        value = getattr(obj, rule.field, None)
        if isinstance(value, str) and changed(rule.field):
            checked = _checked_text(limits.table, rule, value)
            if checked is not value:
                setattr(obj, rule.field, checked)
    for json_rule in limits.json:
        if changed(json_rule.field):
            _check_json(limits.table, json_rule, getattr(obj, json_rule.field, None))


def fitted(model: type[SQLModel], field: str, text: str) -> str:
    """``text`` cut to ``model.field``'s limit: for machine text a service also writes
    elsewhere (a job's error goes to the audit log too)."""
    for rule in limits_of(model).texts:
        if rule.field == field:
            return cut(text, rule.max_chars)
    raise KeyError(f"{model.__name__}.{field} has no length limit")


@event.listens_for(Session, "before_flush")
def _check_before_flush(session: Session, _context: Any, _instances: Any) -> None:
    for obj in session.new:
        if isinstance(obj, SQLModel):
            check_object(obj, changed_only=False)
    for obj in session.dirty:
        if isinstance(obj, SQLModel) and session.is_modified(obj):
            check_object(obj, changed_only=True)
