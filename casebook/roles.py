"""PostgreSQL's two roles for one site, and the SQL that sets them up.

The **owner** owns the schema and its tables and runs the migrations (`hotline db upgrade`, with
``database.owner_url``). The **runtime role** is what the server's processes connect as
(``database.url``): it owns nothing, and may do to each table only what the code does to it
(``TABLE_PRIVILEGES``): never ALTER, DROP or TRUNCATE, never disable a trigger (only a table's
owner may), and only INSERT and SELECT on the append-only tables (``APPEND_ONLY_TABLES``).

The SQL is rendered from the database's own catalog (the tables and sequences that exist in the
schema) so it grants on what is there, and from the rules below. SQLite has one file and no
roles: the file's permissions are its boundary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from casebook.errors import CasebookError

# Tables whose rows are never changed nor removed once written: the runtime role may only add
# and read them. The one list: the grants below read it, and so should any rule about them.
# audit_checkpoint (signed checkpoints of the audit chain) is granted once a migration adds it.
APPEND_ONLY_TABLES: Final = ("audit_event", "audit_checkpoint")

READ: Final = ("SELECT",)
APPEND: Final = ("SELECT", "INSERT")
CHANGE: Final = ("SELECT", "INSERT", "UPDATE")

# What the runtime role may do to each table: what the services do to it, no more. A table of
# the schema that is not here gets nothing (tests/casebook/test_roles.py holds every model's
# table here); one that is here but not in the database yet is left out.
TABLE_PRIVILEGES: Final[Mapping[str, tuple[str, ...]]] = {
    # The start-up check reads the schema's revision; only the owner migrates.
    "alembic_version": READ,
    "agent": CHANGE,
    "signin_session": CHANGE,
    # A failed sign-in removes its address's failures that left the window (casebook.signin).
    "signin_failure": ("SELECT", "INSERT", "DELETE"),
    "call": CHANGE,
    "recording": CHANGE,
    "complaint_case": CHANGE,
    # A case's words are replaced whole when its text is confirmed (casebook.case_terms).
    "case_term": ("SELECT", "INSERT", "DELETE"),
    "heartbeat": CHANGE,
    "transcription_job": CHANGE,
    "callback": CHANGE,
    "callback_attempt": CHANGE,
    # Written once and never changed by any service (a rescore is a new qa_review version).
    "transcript": APPEND,
    "qa_review": APPEND,
    "followup": APPEND,
    "qa_sample": APPEND,
    # Internal notes on a case: added, never edited (casebook.notes).
    "case_note": APPEND,
    **dict.fromkeys(APPEND_ONLY_TABLES, APPEND),
}

# A table the owner creates later (by hand, or a migration run outside `hotline db upgrade`,
# which grants each table its rule in the migration's transaction) is append-only for the
# runtime role until the grants are applied again: anything more fails loudly, nothing is
# silently allowed.
LATER_TABLES: Final = APPEND

DEFAULT_RUNTIME_ROLE: Final = "hotline_runtime"
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# SQLSTATE of "permission denied".
INSUFFICIENT_PRIVILEGE = "42501"


class RolesRefused(CasebookError):
    """The roles cannot be set up as asked; the message says what to do instead."""


def check_role_name(name: str) -> str:
    if not _ROLE_NAME.fullmatch(name):
        raise RolesRefused(
            f"role name {name!r}: use lower-case letters, digits and _ (at most 63, not "
            "starting with a digit)"
        )
    return name


def quoted(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """An SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class RoleFacts:
    """What the catalog says of a role that exists."""

    superuser: bool
    # A member of the owner: it would act with the owner's rights, ownership included.
    member_of_owner: bool
    # Objects of the schema it owns (tables, sequences, the schema itself).
    owned: tuple[str, ...]


@dataclass(frozen=True)
class Catalog:
    """The part of a PostgreSQL database the grants are rendered from, read as the owner."""

    schema: str
    owner: str  # the connected role (database.owner_url's user)
    # The connected role may create roles (CREATEROLE or superuser).
    owner_creates_roles: bool
    # The role that owns the schema, and whether the connected role owns it (or is a member).
    schema_owner: str
    owns_schema: bool
    # Each table of the schema and its owner; the sequences each table's columns own.
    tables: Mapping[str, str]
    sequences: Mapping[str, tuple[str, ...]]
    runtime: RoleFacts | None  # None: the runtime role does not exist yet


def read_catalog(connection: Connection, runtime_role: str) -> Catalog:
    schema, owner, creates_roles = connection.execute(
        text(
            "SELECT current_schema(), current_user, rolcreaterole OR rolsuper "
            "FROM pg_roles WHERE rolname = current_user"
        )
    ).one()
    if schema is None:
        raise RolesRefused(
            "no schema to grant on: the search_path names none that exists (create the "
            "schema, or set the owner's search_path)"
        )
    schema_owner, owns_schema = connection.execute(
        text(
            "SELECT pg_get_userbyid(nspowner), pg_has_role(current_user, nspowner, 'MEMBER') "
            "FROM pg_namespace WHERE nspname = :schema"
        ),
        {"schema": schema},
    ).one()
    table_rows = connection.execute(
        text(
            "SELECT c.relname, pg_get_userbyid(c.relowner) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') ORDER BY c.relname"
        ),
        {"schema": schema},
    ).all()
    # Sequences owned by a table's column: serial (deptype a) and identity (deptype i) ids.
    sequence_rows = connection.execute(
        text(
            "SELECT t.relname, s.relname FROM pg_class s "
            "JOIN pg_namespace n ON n.oid = s.relnamespace "
            "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
            "AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "WHERE s.relkind = 'S' AND n.nspname = :schema ORDER BY t.relname, s.relname"
        ),
        {"schema": schema},
    ).all()
    sequences: dict[str, tuple[str, ...]] = {}
    for table, sequence in sequence_rows:
        sequences[table] = (*sequences.get(table, ()), sequence)
    return Catalog(
        schema=schema,
        owner=owner,
        owner_creates_roles=bool(creates_roles),
        schema_owner=schema_owner,
        owns_schema=bool(owns_schema),
        tables={str(name): str(table_owner) for name, table_owner in table_rows},
        sequences=sequences,
        runtime=_role_facts(connection, runtime_role, schema),
    )


def _role_facts(connection: Connection, role: str, schema: str) -> RoleFacts | None:
    row = connection.execute(
        text(
            "SELECT rolsuper, pg_has_role(:role, current_user, 'MEMBER') "
            "FROM pg_roles WHERE rolname = :role"
        ),
        {"role": role},
    ).first()
    if row is None:
        return None
    owned = connection.execute(
        text(
            "SELECT n.nspname FROM pg_namespace n "
            "WHERE n.nspname = :schema AND n.nspowner = (SELECT oid FROM pg_roles "
            "WHERE rolname = :role) "
            "UNION ALL SELECT c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema "
            "AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = :role) ORDER BY 1"
        ),
        {"role": role, "schema": schema},
    ).scalars()
    return RoleFacts(superuser=bool(row[0]), member_of_owner=bool(row[1]), owned=tuple(owned))


def refusal(catalog: Catalog, runtime_role: str, *, creating: bool) -> str | None:
    """Why these grants cannot make ``runtime_role`` a least-privilege role, or None.
    ``creating``: the SQL is about to be run as the owner, which must then be able to create
    the role if it is missing."""
    owner = catalog.owner
    if runtime_role == owner:
        return (
            f"{runtime_role} is the owner (database.owner_url's user): the runtime role must be "
            "another role (--runtime-role NAME, or database.url's user)"
        )
    if not catalog.owns_schema:
        return (
            f"schema {catalog.schema} is owned by {catalog.schema_owner}, not {owner}: as a "
            f"superuser, ALTER SCHEMA {quoted(catalog.schema)} OWNER TO {quoted(owner)}"
        )
    # Owned by this very role: the default privileges below are for the tables it creates.
    foreign = sorted(name for name, table_owner in catalog.tables.items() if table_owner != owner)
    if foreign:
        other = catalog.tables[foreign[0]]
        return (
            f"table {foreign[0]} is owned by {other}, not {owner}: connect as the tables' "
            f"owner (database.owner_url), or make {owner} own them (as a superuser, "
            f"REASSIGN OWNED BY {quoted(other)} TO {quoted(owner)})"
        )
    runtime = catalog.runtime
    if runtime is None:
        if creating and not catalog.owner_creates_roles:
            return (
                f"role {runtime_role} does not exist and {owner} may not create roles: as a "
                f"superuser, CREATE ROLE {quoted(runtime_role)} LOGIN (or give {owner} "
                "CREATEROLE), then run this again"
            )
        return None
    if runtime.superuser:
        return f"role {runtime_role} is a superuser: it bypasses every privilege"
    if runtime.member_of_owner:
        return f"role {runtime_role} is a member of {owner}: it would act as the owner"
    if runtime.owned:
        return (
            f"role {runtime_role} owns {', '.join(runtime.owned)} in schema {catalog.schema}: "
            f"the runtime role owns nothing (as a superuser, REASSIGN OWNED BY "
            f"{quoted(runtime_role)} TO {quoted(owner)})"
        )
    return None


def grant_statements(catalog: Catalog, runtime_role: str) -> list[str]:
    """The SQL that makes ``runtime_role`` the site's runtime role, each statement with the
    comment that says why; run again, it yields the same privileges (it revokes first)."""
    role = quoted(runtime_role)
    schema = quoted(catalog.schema)
    owner = quoted(catalog.owner)
    statements = [
        # No password here: the README says how to set one without it passing through a file.
        f"-- the runtime role logs in and inherits nothing; set its password with ALTER ROLE\n"
        f"DO $$ BEGIN\n"
        f"  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {literal(runtime_role)}) THEN\n"
        f"    CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;\n"
        f"  END IF;\n"
        f"END $$",
        f"-- it uses the schema and creates nothing in it\n"
        f"REVOKE ALL ON SCHEMA {schema} FROM {role}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"-- no TRUNCATE, REFERENCES or TRIGGER on any table; only what each table's rule says\n"
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}",
    ]
    for table in sorted(catalog.tables):
        privileges = TABLE_PRIVILEGES.get(table)
        if privileges is None:
            statements.append(
                f"-- {table}: no rule in casebook/roles.py, so no privileges\n"
                f"REVOKE ALL ON {schema}.{quoted(table)} FROM {role}"
            )
            continue
        why = f"-- {table} is append-only\n" if table in APPEND_ONLY_TABLES else ""
        statements.append(
            f"{why}GRANT {', '.join(privileges)} ON {schema}.{quoted(table)} TO {role}"
        )
        if "INSERT" in privileges:
            # New rows take their ids from the table's sequence (nextval needs USAGE).
            statements.extend(
                f"GRANT USAGE ON SEQUENCE {schema}.{quoted(sequence)} TO {role}"
                for sequence in catalog.sequences.get(table, ())
            )
    default = f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema}"
    statements += [
        f"-- tables the owner creates later: append-only until the grants are applied again\n"
        f"{default} REVOKE ALL ON TABLES FROM {role}",
        f"{default} GRANT {', '.join(LATER_TABLES)} ON TABLES TO {role}",
        f"{default} REVOKE ALL ON SEQUENCES FROM {role}",
        f"{default} GRANT USAGE ON SEQUENCES TO {role}",
    ]
    return statements


def render(catalog: Catalog, runtime_role: str) -> str:
    """The statements as a script for psql (one transaction)."""
    header = (
        f"-- the hotline's runtime role {runtime_role} on schema {catalog.schema}, "
        f"granted by its owner {catalog.owner}"
    )
    body = ";\n".join(grant_statements(catalog, runtime_role))
    return f"{header}\nBEGIN;\n{body};\nCOMMIT;\n"


def plan(connection: Connection, runtime_role: str, *, applying: bool) -> Catalog:
    """The catalog, once it is certain the grants can be rendered (and run, if ``applying``)
    for ``runtime_role``; otherwise ``RolesRefused``."""
    check_role_name(runtime_role)
    catalog = read_catalog(connection, runtime_role)
    why_not = refusal(catalog, runtime_role, creating=applying)
    if why_not is not None:
        raise RolesRefused(why_not)
    return catalog


def apply(connection: Connection, runtime_role: str) -> Catalog:
    """Run the grants on ``connection`` (the owner's, in its transaction)."""
    catalog = plan(connection, runtime_role, applying=True)
    for statement in grant_statements(catalog, runtime_role):
        try:
            connection.exec_driver_sql(statement)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
                raise
            reason = str(exc.orig).strip().splitlines()[0]
            raise RolesRefused(f"{reason} (connected as {catalog.owner})") from exc
    return catalog


def role_exists(connection: Connection, role: str) -> bool:
    found = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    return found.first() is not None


def connected_role_owns_tables(connection: Connection) -> str | None:
    """The connected role's name when it owns a table of the current schema (the server
    connected as the owner: no least privilege), else None."""
    row = connection.execute(
        text(
            "SELECT current_user FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
            "AND pg_has_role(current_user, c.relowner, 'MEMBER') LIMIT 1"
        )
    ).first()
    return None if row is None else str(row[0])


def unusable_schemas(connection: Connection) -> list[str]:
    """Schemas named on the search_path that exist but the connected role may not use: how a
    runtime role that was never granted sees the site's schema (as if it were empty)."""
    path = connection.execute(text("SELECT current_setting('search_path')")).scalar_one()
    named = [part.strip().strip('"') for part in str(path).split(",")]
    return [
        schema
        for schema in named
        if schema
        and schema != "$user"
        and connection.execute(
            text(
                "SELECT NOT has_schema_privilege(oid, 'USAGE') FROM pg_namespace "
                "WHERE nspname = :schema"
            ),
            {"schema": schema},
        ).scalar()
    ]
