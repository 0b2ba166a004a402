"""Least privilege on PostgreSQL (issue 17, item 2): the owner migrates, the runtime role the
server connects as owns nothing and may only add to and read the audit log; `hotline db roles`
prints and applies its grants. SQLite has one file and no roles, and says so."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from alembic import command
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel, select

from casebook import audit, cases, roles
from casebook.access import Actor
from casebook.db import (
    Database,
    PrivilegesMissing,
    SchemaNotCurrent,
    _alembic_config,
    code_revision,
    owner_settings,
    upgrade_database,
)
from casebook.models import AuditEvent
from casebook.roles import (
    APPEND_ONLY_TABLES,
    TABLE_PRIVILEGES,
    Catalog,
    RoleFacts,
    RolesRefused,
    refusal,
)
from casebook.settings import DatabaseSettings
from hotline.app.checks import check_database
from hotline.app.config import Settings
from tests.conftest import (
    PG_OWNER,
    PG_RUNTIME,
    PG_URL,
    Staff,
    drop_pg_roles,
    pg_owner_url,
    pg_url_as,
    use_pg_schema,
)

HOTLINE = str(Path(sys.executable).with_name("hotline"))
ROW_PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE"}


# --- the rules ------------------------------------------------------------------------------------


def test_every_table_has_a_rule_of_row_privileges_only() -> None:
    """A new table must be given its rule here (else the runtime role gets nothing on it), and
    no rule may hand out TRUNCATE, REFERENCES or TRIGGER."""
    assert set(SQLModel.metadata.tables) | {"alembic_version"} <= set(TABLE_PRIVILEGES)
    for table, privileges in TABLE_PRIVILEGES.items():
        assert set(privileges) <= ROW_PRIVILEGES, table
        assert "SELECT" in privileges, table


def test_the_append_only_tables_may_only_be_added_to_and_read() -> None:
    assert {"audit_event", "audit_checkpoint"} <= set(APPEND_ONLY_TABLES)
    for table in APPEND_ONLY_TABLES:
        assert TABLE_PRIVILEGES[table] == ("SELECT", "INSERT")


def catalog(**changes: object) -> Catalog:
    facts: dict[str, object] = {
        "schema": "public",
        "owner": "hotline",
        "owner_creates_roles": True,
        "schema_owner": "hotline",
        "owns_schema": True,
        "tables": {
            "alembic_version": "hotline",
            "audit_event": "hotline",
            "complaint_case": "hotline",
            "signin_failure": "hotline",
            "mystery": "hotline",
        },
        "sequences": {
            "audit_event": ("audit_event_id_seq",),
            "complaint_case": ("complaint_case_id_seq",),
            "mystery": ("mystery_id_seq",),
        },
        "runtime": RoleFacts(superuser=False, member_of_owner=False, owned=()),
    }
    facts.update(changes)
    return Catalog(**facts)  # type: ignore[arg-type]


def test_the_sql_grants_each_table_its_rule_and_nothing_else() -> None:
    sql = roles.render(catalog(), "hotline_runtime")
    grants = [line for line in sql.splitlines() if line.startswith("GRANT")]
    assert grants == [
        'GRANT USAGE ON SCHEMA "public" TO "hotline_runtime";',
        'GRANT SELECT ON "public"."alembic_version" TO "hotline_runtime";',
        'GRANT SELECT, INSERT ON "public"."audit_event" TO "hotline_runtime";',
        'GRANT USAGE ON SEQUENCE "public"."audit_event_id_seq" TO "hotline_runtime";',
        'GRANT SELECT, INSERT, UPDATE ON "public"."complaint_case" TO "hotline_runtime";',
        'GRANT USAGE ON SEQUENCE "public"."complaint_case_id_seq" TO "hotline_runtime";',
        'GRANT SELECT, INSERT, DELETE ON "public"."signin_failure" TO "hotline_runtime";',
    ]
    # A table the code has no rule for gets nothing (nor its sequence); audit_checkpoint, not
    # in this database, is left out.
    assert "-- mystery: no rule in casebook/roles.py, so no privileges" in sql
    assert "mystery_id_seq" not in sql and "audit_checkpoint" not in sql
    assert "PASSWORD" not in sql
    assert "-- audit_event is append-only\nGRANT SELECT, INSERT" in sql
    assert 'CREATE ROLE "hotline_runtime" LOGIN' in sql
    assert 'REVOKE ALL ON ALL TABLES IN SCHEMA "public" FROM "hotline_runtime"' in sql
    assert (
        'ALTER DEFAULT PRIVILEGES FOR ROLE "hotline" IN SCHEMA "public" '
        'GRANT SELECT, INSERT ON TABLES TO "hotline_runtime"'
    ) in sql


def test_an_append_only_table_added_later_is_granted_as_one() -> None:
    later = catalog(tables={"audit_checkpoint": "hotline"})
    sql = roles.render(later, "rt")
    assert (
        '-- audit_checkpoint is append-only\nGRANT SELECT, INSERT ON "public"."audit_checkpoint" '
        'TO "rt";'
    ) in sql


@pytest.mark.parametrize(
    ("changes", "role", "problem"),
    [
        ({}, "hotline", "hotline is the owner"),
        ({"owns_schema": False, "schema_owner": "postgres"}, "rt", "owned by postgres"),
        ({"tables": {"agent": "someone"}}, "rt", "table agent is owned by someone"),
        (
            {"runtime": RoleFacts(superuser=True, member_of_owner=False, owned=())},
            "rt",
            "superuser",
        ),
        (
            {"runtime": RoleFacts(superuser=False, member_of_owner=True, owned=())},
            "rt",
            "member of hotline",
        ),
        (
            {"runtime": RoleFacts(superuser=False, member_of_owner=False, owned=("call",))},
            "rt",
            "owns call",
        ),
        ({"runtime": None, "owner_creates_roles": False}, "rt", 'CREATE ROLE "rt" LOGIN'),
    ],
)
def test_a_runtime_role_that_could_not_be_least_privilege_is_refused(
    changes: dict[str, object], role: str, problem: str
) -> None:
    why_not = refusal(catalog(**changes), role, creating=True)
    assert why_not is not None and problem in why_not


def test_a_missing_role_is_fine_to_print_for_a_superuser_to_run() -> None:
    assert refusal(catalog(runtime=None, owner_creates_roles=False), "rt", creating=False) is None


@pytest.mark.parametrize("name", ["Hotline", "x; DROP TABLE agent", "1st", "a" * 64, ""])
def test_role_names_are_plain(name: str) -> None:
    with pytest.raises(RolesRefused, match="role name"):
        roles.check_role_name(name)


def test_owner_url_is_for_postgresql_and_the_same_database() -> None:
    with pytest.raises(ValidationError, match="SQLite has no roles"):
        DatabaseSettings(url="sqlite:///x.db", owner_url="postgresql://o@db/hotline")
    with pytest.raises(ValidationError, match="different databases"):
        DatabaseSettings(url="postgresql://rt@db/hotline", owner_url="postgresql://o@db/other")
    with pytest.raises(ValidationError, match="different databases"):
        DatabaseSettings(
            url="postgresql://rt@db/hotline", owner_url="postgresql://o@db:5433/hotline"
        )
    both = DatabaseSettings(
        url="postgresql+psycopg://rt:secret@db/hotline",
        owner_url="postgresql://owner@db:5432/hotline",
    )
    assert owner_settings(both).url == "postgresql://owner@db:5432/hotline"


# --- SQLite: no roles -----------------------------------------------------------------------------


def operator(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOTLINE, "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=config.parent,
    )


def write_config(folder: Path, database: dict[str, object]) -> Path:
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({"database": database}), encoding="utf-8")
    return config


def test_on_sqlite_db_roles_says_there_is_nothing_to_do(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"url": "sqlite:///hotline.db"})
    assert operator(config, "db", "upgrade").returncode == 0
    result = operator(config, "db", "roles", "--apply")
    assert result.returncode == 0, result.stderr
    assert "SQLite has no roles, nothing to do" in result.stdout
    assert "GRANT" not in result.stdout


def test_owner_url_beside_a_sqlite_url_stops_the_command(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, {"url": "sqlite:///hotline.db", "owner_url": "postgresql://o@db/hotline"}
    )
    result = operator(config, "db", "upgrade")
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1
    assert "config.yaml: database: owner_url is for PostgreSQL" in result.stderr


# --- PostgreSQL: the two roles at work ------------------------------------------------------------


@pytest.fixture
def pg_settings(settings: Settings, pg_schema: str) -> Settings:
    use_pg_schema(settings, pg_schema)
    return settings


@pytest.fixture
def runtime_db(pg_settings: Settings) -> Iterator[Database]:
    db = Database(pg_settings.database)
    yield db
    db.dispose()


def refused_as(db: Database, statement: str) -> str:
    """``statement`` run as ``db``'s role: the error it gets (it must get one)."""
    with pytest.raises(DBAPIError) as refused, db.engine.begin() as connection:
        connection.execute(text(statement))
    assert getattr(refused.value.orig, "sqlstate", None) == roles.INSUFFICIENT_PRIVILEGE
    return str(refused.value.orig)


TAMPERING = [
    "ALTER TABLE audit_event DISABLE TRIGGER ALL",
    "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only",
    "DROP TRIGGER audit_event_append_only ON audit_event",
    "DELETE FROM audit_event",
    "UPDATE audit_event SET actor = 'nobody'",
    "TRUNCATE audit_event",
    "DROP TABLE audit_event",
    "ALTER TABLE audit_event ADD COLUMN note text",
    "ALTER TABLE audit_event OWNER TO CURRENT_USER",
    "ALTER TABLE complaint_case DISABLE TRIGGER ALL",
    "TRUNCATE complaint_case",
    "DELETE FROM complaint_case",
    "UPDATE transcript SET text = 'rewritten'",
    "CREATE TABLE shadow (id integer)",
    "SELECT setval('audit_event_id_seq', 1)",
]


@pytest.mark.pg
def test_the_runtime_role_cannot_rewrite_the_audit_log_and_the_services_work(
    pg_settings: Settings, runtime_db: Database
) -> None:
    staff = Staff(runtime_db, pg_settings)  # bootstrap, agents added, passwords hashed
    case = runtime_db.run(
        lambda s: cases.register_complaint(
            s, pg_settings, Actor.system("ivr"), caller_number="0910000001", uniqueid="r.1"
        )
    )
    with runtime_db.session() as s:
        entries = len(s.exec(select(AuditEvent)).all())
    assert entries > 0
    for statement in TAMPERING:
        reason = refused_as(runtime_db, statement)
        assert "permission denied" in reason or "must be owner" in reason, statement
    with runtime_db.session() as s:
        assert len(s.exec(select(AuditEvent)).all()) == entries
        assert audit.check_chain(s.exec(select(AuditEvent).order_by(AuditEvent.id))).intact  # type: ignore[arg-type]
    admin = staff.actor("admin")
    shown = runtime_db.run(lambda s: cases.get_case(s, admin, case.reference or ""))
    assert shown.id == case.id
    with runtime_db.engine.connect() as connection:
        owned = connection.execute(
            text("SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole")
        ).scalar_one()
    assert owned == 0
    assert runtime_db.connected_owner() is None


@pytest.mark.pg
def test_the_owner_migrates_and_the_runtime_role_keeps_its_grants(
    pg_settings: Settings, runtime_db: Database
) -> None:
    Staff(runtime_db, pg_settings)
    owner = Database(owner_settings(pg_settings.database), migrate=False)
    try:
        assert owner.connected_owner() == PG_OWNER
        # The migration of the sign-in tables dropped and made again by the owner.
        with owner.engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0003")
    finally:
        owner.dispose()
    # The newest revision, whichever migration that is.
    needed = rf"at revision 0003, this code needs {code_revision()}: run"
    with pytest.raises(SchemaNotCurrent, match=needed):
        Database(pg_settings.database)
    done = upgrade_database(pg_settings.database)
    assert (done.revision, done.runtime_role, done.granted) == (code_revision(), PG_RUNTIME, True)
    fresh = Database(pg_settings.database)
    try:
        # The new signin_failure table: the runtime role got its rule (DELETE included).
        with fresh.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO signin_failure (username, address, at) VALUES ('x', 'y', now())")
            )
            connection.execute(text("DELETE FROM signin_failure WHERE address = 'y'"))
        refused_as(fresh, "ALTER TABLE audit_event DISABLE TRIGGER ALL")
    finally:
        fresh.dispose()


@pytest.mark.pg
def test_the_server_never_migrates_it_says_to_run_db_upgrade(
    settings: Settings, pg_empty_schema: str
) -> None:
    use_pg_schema(settings, pg_empty_schema)
    # A new site's schema, the runtime role not granted yet: it cannot even see the schema.
    with pytest.raises(PrivilegesMissing, match=r"may not use schema .* run hotline db upgrade"):
        Database(settings.database, create=True)
    # Granted first (`hotline db roles --apply` on the empty schema), then not migrated.
    owner = Database(owner_settings(settings.database), migrate=False)
    with owner.engine.begin() as connection:
        roles.apply(connection, PG_RUNTIME)
    owner.dispose()
    with pytest.raises(SchemaNotCurrent, match="has no hotline schema: run hotline db upgrade"):
        Database(settings.database, create=True)
    check = check_database(settings)
    assert not check.ok and "run hotline db upgrade" in check.message
    upgrade_database(settings.database)
    check = check_database(settings)
    assert check.ok and check.message.endswith("schema up to date"), check.message


@pytest.mark.pg
def test_the_start_up_check_names_a_server_connected_as_the_owner(
    settings: Settings, pg_schema: str, tmp_path: Path
) -> None:
    settings.database.url = pg_owner_url(pg_schema)  # a site with one role
    check = check_database(settings)
    assert check.ok
    assert f"connected as {PG_OWNER}, which owns the tables" in check.message
    assert "hotline db roles" in check.message
    # What to do about it: the role is made, and the config then names both.
    config = write_config(tmp_path, {"url": settings.database.url})
    printed = operator(config, "db", "roles")
    assert printed.returncode == 0, printed.stderr
    assert 'CREATE ROLE "hotline_runtime" LOGIN' in printed.stdout
    assert printed.stderr == (
        "note: to run it as the owner: hotline db roles --apply (runtime role hotline_runtime); "
        "then move database.url to database.owner_url and point database.url at "
        "hotline_runtime\n"
    )


# --- `hotline db roles` on PostgreSQL -------------------------------------------------------------


@pytest.fixture
def new_role() -> Iterator[str]:
    """A role name nobody has yet; dropped at the end if a test made it."""
    name = f"hl_new_{uuid.uuid4().hex[:10]}"
    yield name
    drop_pg_roles(name)


def pg_config(folder: Path, schema: str, runtime: str) -> Path:
    return write_config(
        folder,
        {
            "url": pg_url_as(runtime, schema),
            "owner_url": pg_owner_url(schema),
            "retry_seconds": 2.0,
        },
    )


@pytest.mark.pg
def test_db_roles_prints_sql_that_creates_and_grants_the_runtime_role(
    tmp_path: Path, pg_schema: str, new_role: str, settings: Settings
) -> None:
    config = pg_config(tmp_path, pg_schema, new_role)
    printed = operator(config, "db", "roles")
    assert printed.returncode == 0, printed.stderr
    sql = printed.stdout
    assert sql.startswith(f"-- the hotline's runtime role {new_role} on schema {pg_schema}")
    assert f'CREATE ROLE "{new_role}" LOGIN' in sql
    grant = f'GRANT SELECT, INSERT ON "{pg_schema}"."audit_event" TO "{new_role}";'
    assert grant in sql
    for line in sql.splitlines():
        if line.startswith("GRANT"):
            assert not {"ALL", "TRUNCATE", "TRIGGER", "REFERENCES"} & set(line.split()), line
    assert "PASSWORD" not in sql
    assert "hotline db roles --apply" in printed.stderr
    # Printed, it is what an owner (or a DBA) pipes into psql as it is.
    owner_psql = PG_URL.replace("postgresql://postgres@", f"postgresql://{PG_OWNER}@", 1)
    ran = subprocess.run(
        ["psql", owner_psql, "-v", "ON_ERROR_STOP=1", "-q"],
        input=sql,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    settings.database.url = pg_url_as(new_role, pg_schema)
    settings.database.owner_url = pg_owner_url(pg_schema)
    check = check_database(settings)
    assert check.ok and check.message.endswith("schema up to date"), check.message
    db = Database(settings.database)
    try:
        Staff(db, settings)
        refused_as(db, "DELETE FROM audit_event")
        refused_as(db, "ALTER TABLE audit_event DISABLE TRIGGER ALL")
    finally:
        db.dispose()


@pytest.mark.pg
def test_db_roles_apply_grants_a_role_the_dba_made(
    tmp_path: Path, pg_schema: str, new_role: str, settings: Settings
) -> None:
    superuser = Database(DatabaseSettings(url=PG_URL), migrate=False)
    with superuser.engine.begin() as connection:
        connection.execute(text(f'CREATE ROLE "{new_role}" LOGIN'))
    settings.database.url = pg_url_as(new_role, pg_schema)
    settings.database.owner_url = pg_owner_url(pg_schema)
    never_granted = check_database(settings)
    assert not never_granted.ok
    assert f"may not use schema {pg_schema}" in never_granted.message
    assert "hotline db roles --apply" in never_granted.message
    # Half granted by hand: the schema but no table.
    with superuser.engine.begin() as connection:
        connection.execute(text(f'GRANT USAGE ON SCHEMA "{pg_schema}" TO "{new_role}"'))
    superuser.dispose()
    half = check_database(settings)
    assert not half.ok
    assert half.message == (
        "permission denied for table alembic_version: the runtime role lacks its privileges; "
        "as the owner, run hotline db roles --apply"
    )

    config = pg_config(tmp_path, pg_schema, new_role)
    printed = operator(config, "db", "roles")
    applied = operator(config, "db", "roles", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == printed.stdout + (
        f"applied as the owner: {new_role} has its privileges; set its password with ALTER ROLE\n"
    )
    assert check_database(settings).ok
    # Applied again, and by `hotline db upgrade` (database.url's user is the runtime role).
    assert operator(config, "db", "roles", "--apply").returncode == 0
    upgraded = operator(config, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"runtime role {new_role}: privileges granted" in upgraded.stdout
    db = Database(settings.database)
    try:
        refused_as(db, "UPDATE audit_event SET actor = 'x'")
    finally:
        db.dispose()


@pytest.mark.pg
def test_db_roles_refuses_what_would_not_be_least_privilege(tmp_path: Path, pg_schema: str) -> None:
    config = pg_config(tmp_path, pg_schema, PG_RUNTIME)
    as_owner = operator(config, "db", "roles", "--runtime-role", PG_OWNER)
    assert as_owner.returncode == 1
    assert as_owner.stderr == (
        f"refused: {PG_OWNER} is the owner (database.owner_url's user): the runtime role must "
        "be another role (--runtime-role NAME, or database.url's user)\n"
    )
    superuser = operator(config, "db", "roles", "--runtime-role", "postgres")
    assert superuser.returncode == 1
    assert "role postgres is a superuser" in superuser.stderr
    bad_name = operator(config, "db", "roles", "--runtime-role", "x; DROP")
    assert bad_name.returncode == 1 and "role name" in bad_name.stderr
