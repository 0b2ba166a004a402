"""`hotline`: the one door for people. People's commands are clients of the hotline server: they
send what was typed to its API as the person signed in (`hotline login`) and render the answer;
no rules, no config, no database here. Operator commands (serve, db upgrade, ...) run on the
server host with the site's config.

An agent runs these commands all day and each starts a fresh interpreter: this module imports
only the standard library, typer and cli_client at the top. rich, the Arabic shaping and the
whole application (hotline.app, hence the database and the speech model) are imported inside
the functions that need them.

Everything the server sends is stored text someone else typed (a caller's name, a complaint, a
reason): it reaches the terminal only through the edges below, each of which makes it inert
(inert_text): ``say``/``say_error`` for plain lines, and the consoles of ``out``/``err``, which
read no Rich markup or emoji codes and pass every string through the same helper. Our own
styles are Text objects (``styled``), never markup in a string.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import functools
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

import cli_client as client
import cli_render as terminal
from cli_client import ApiClient, ApiError, ClientError, NotSignedIn, quoted
from cli_listing import Column, more_line, table_lines
from inert_text import inert, json_text

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from hotline.app.config import Settings
    from hotline.app.demo import DemoResult

app = typer.Typer(
    help="خط الشكاوى 15654 — the 15654 complaints hotline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (operator, on the server host).", no_args_is_help=True)
agents_app = typer.Typer(help="Agents, their roles and their passwords.", no_args_is_help=True)
cases_app = typer.Typer(help="Complaint cases.", no_args_is_help=True)
followup_app = typer.Typer(help="Follow-ups after resolution.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(agents_app, name="agents")
app.add_typer(cases_app, name="cases")
app.add_typer(followup_app, name="followup")
drafts_app = typer.Typer(
    help="Drafts waiting for an agent (scripts; people use `review`).", no_args_is_help=True
)
callbacks_app = typer.Typer(help="Follow-up callbacks.", no_args_is_help=True)
app.add_typer(drafts_app, name="drafts")
app.add_typer(callbacks_app, name="callbacks")
calls_app = typer.Typer(help="Calls the AMI listener stored.", no_args_is_help=True)
app.add_typer(calls_app, name="calls")
prompts_app = typer.Typer(help="IVR prompt audio (operator).", no_args_is_help=True)
asterisk_app = typer.Typer(
    help="Asterisk configuration for this site (operator).", no_args_is_help=True
)
app.add_typer(prompts_app, name="prompts")
app.add_typer(asterisk_app, name="asterisk")
qa_app = typer.Typer(help="QA: integrity, samples, scorecards.", no_args_is_help=True)
recordings_app = typer.Typer(help="Recordings: listen, export, retention.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(qa_app, name="qa")
app.add_typer(recordings_app, name="recordings")
app.add_typer(audit_app, name="audit")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="config.yaml for operator commands (serve, db upgrade, ...; default ./config.yaml "
        "or $HOTLINE_CONFIG). People's commands use the server they signed in to.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (logical-order text).")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV (logical-order text).")]
ReferenceArgument = Annotated[
    str, typer.Argument(metavar="REF", help="The case's reference number (9 digits).")
]
RecordingArgument = Annotated[
    int, typer.Argument(metavar="REC", help="The recording's id (as qa sample lists it).")
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password(s) from standard input, one a line, instead of a prompt.",
    ),
]


# The words the server accepts, offered as choices; the server checks them again
# (tests/test_cli.py holds them equal to casebook's).
def choice(words: type[StrEnum], metavar: str, help: str, *names: str) -> Any:
    """An option taking one of ``words``: named by ``metavar``, the words listed in its help so
    they wrap between words (Typer's own [a|b|c] is one word the help breaks anywhere)."""
    listed = ", ".join(words)
    return typer.Option(*names, metavar=metavar, help=f"{help} ({listed})", show_choices=False)


class CaseStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FOLLOW_UP = "follow_up"
    CLOSED = "closed"
    ESCALATED = "escalated"
    REJECTED = "rejected"


class ContactMethod(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    LETTER = "letter"
    VISIT = "visit"


class FollowUpResult(StrEnum):
    # The words agents type (casebook.followups.RESULT_WORDS).
    SATISFIED = "satisfied"
    NOT_SATISFIED = "not-satisfied"
    PARTIAL = "partial"
    NO_ANSWER = "no-answer"


PRIORITIES = ("low", "normal", "high", "urgent")
# Shift days in week order (casebook.settings.WEEKDAYS).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ExitCode:
    """The exit codes the README's table documents; ``explain`` and ``fail`` use these alone."""

    DONE = 0
    # A rule, a role, a wrong reference, no session, no server; a check that found something.
    REFUSED = 1
    # What was typed cannot be read: an unknown command or option, a value not among the
    # choices, a malformed date, time or period (checked here, or by the server: its 400
    # "invalid"). 2 is what click (typer) exits with for its own usage errors.
    USAGE = 2
    DATABASE = 3
    # The site's config.yaml is wrong, or there is no site where an operator command ran.
    CONFIG = 4


SESSION_ENDED = "your session has ended (expired, signed out or disabled): run hotline login"


def fail(message: str, code: int = ExitCode.REFUSED, label: str = "error") -> NoReturn:
    say_error(label, message)
    raise typer.Exit(code)


def usage_error(message: str) -> NoReturn:
    fail(message, ExitCode.USAGE)


def say_error(label: str, message: str) -> None:
    # One line: a message may echo what someone typed (the server's refusals do).
    sys.stderr.write(f"{label}: {inert(message)}\n")
    sys.stderr.flush()


# --- the terminal (rich only once something is drawn) ---------------------------------------------


@functools.cache
def _inert_console() -> type[Console]:
    from rich.console import Console

    class InertConsole(Console):
        """A console that reads no markup or emoji codes and shows every string inert: every
        string it draws, printed or in a table cell, is turned into text here."""

        def render_str(self, text: str, **options: Any) -> Text:
            options["markup"] = options["emoji"] = False
            return super().render_str(inert(text, multiline=True), **options)

    return InertConsole


@functools.cache
def out() -> Console:
    return _inert_console()(highlight=False, markup=False, emoji=False)


@functools.cache
def err() -> Console:
    return _inert_console()(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Our own styling, as Rich text: ``styled(("ok", "green"), " listener")``; every part
    inert (a part may hold a name from the server)."""
    from rich.text import Text

    text = Text()
    for part in parts:
        words, style = (part, "") if isinstance(part, str) else part
        text.append(inert(words), style=style)
    return text


def bidi() -> str:
    """Visual reordering is for people at a terminal; pipes and files keep logical order. A
    terminal that applies bidi itself (mlterm, Konsole) wants logical: HOTLINE_DISPLAY__BIDI."""
    if not sys.stdout.isatty():
        return "logical"
    return "logical" if os.environ.get("HOTLINE_DISPLAY__BIDI") == "logical" else "visual"


def visual(text: str) -> str:
    return terminal.visual(text, bidi())


def say(text: str = "") -> None:
    # Our own line breaks stay; a value from the server in the line is shown in visual() or
    # made inert here.
    print(inert(text, multiline=True), flush=True)


def emit_json(data: Any) -> None:
    """The server's data as stored (parsed, every value is what the server sent), with what a
    terminal would act on written as \\u escapes, so --json read on a terminal is inert too."""
    sys.stdout.write(json_text(data, indent=2) + "\n")


def emit_csv(rows: Sequence[dict[str, Any]]) -> None:
    """CSV has no escapes: to a pipe or a file each value is as stored (the data), at a
    terminal (a person reading) each is made inert."""
    if not rows:
        return
    at_terminal = sys.stdout.isatty()

    def value(item: Any) -> Any:
        text = ",".join(map(str, item)) if isinstance(item, list) else item
        return inert(text) if at_terminal and isinstance(text, str) else text

    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({key: value(item) for key, item in row.items()} for row in rows)


def local_time(value: str | None, *, short: bool = False, clock: bool = False) -> str:
    """A time the server sent (ISO, already in the site's time zone), as people read it;
    ``clock``: the time of day alone."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if clock:
        return moment.strftime("%H:%M")
    return moment.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M")


def check_time(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        time.fromisoformat(value)
    except ValueError:
        usage_error(f"{what} must be HH:MM, got {value!r}")
    return value


def period_hours(value: str, what: str) -> float:
    """7d, 24h, 2w: a period ending now, in hours."""
    match = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", value.lower())
    if match is None or int(match.group(1)) == 0:
        usage_error(f"{what} must be a number of hours, days or weeks (24h, 7d, 2w), got {value!r}")
    return float(int(match.group(1)) * {"h": 1, "d": 24, "w": 24 * 7}[match.group(2)])


# --- the server and the session -------------------------------------------------------------------

_state: dict[str, Path | None] = {"config": None}


@app.callback()
def _global_options(config: ConfigOption = None) -> None:
    _state["config"] = config


def api() -> ApiClient:
    """The server, as the person signed in; without a session, the one-line refusal."""
    return ApiClient.signed_in(client.load_session())


def read_stdin_line(what: str) -> str:
    line = sys.stdin.readline()
    if not line:
        usage_error(f"--password-stdin: standard input ended before the {what}")
    return line.rstrip("\r\n")


def ask_secret(question: str) -> str:
    return str(typer.prompt(visual(question), hide_input=True))


def ask_new_password(from_stdin: bool) -> str:
    """A new password: typed twice at the prompt (asked again until both match), or two lines
    of standard input that must match."""
    if from_stdin:
        first, second = read_stdin_line("new password"), read_stdin_line("new password again")
        if first != second:
            fail("the two new passwords differ")
        return first
    return str(
        typer.prompt(
            visual("كلمة المرور الجديدة (new password)"),
            hide_input=True,
            confirmation_prompt=visual("أعد كتابتها (repeat it)"),
        )
    )


def hand_over(username: str, password: str) -> None:
    say(f"one-time password for {username}: {password}")
    say(
        visual(
            f"سلّمها إلى {username} شخصياً وعلى انفراد (hand it to {username} in person, privately; "
            "never by e-mail or chat): it works once, at their first hotline login, where they "
            "choose their own"
        )
    )


@app.command("login")
def login(
    username: Annotated[
        str | None,
        typer.Argument(metavar="USER", help="Your user name (asked when left out)."),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="ADDRESS",
            help="unix:/path/hotline.sock or https://host:port (default: your last server, "
            "else $HOTLINE_SERVER, else unix:/run/hotline/hotline.sock).",
        ),
    ] = None,
    cafile: Annotated[
        Path | None,
        typer.Option("--cafile", metavar="PEM", help="CA certificate(s) to trust for https."),
    ] = None,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Sign in to the hotline server; your session is kept for your next commands."""
    previous = client.load_session()
    address = client.default_server(server, previous)
    if cafile is not None:
        trusted: str | None = str(cafile.resolve())
    elif previous is not None and previous.server == address:
        trusted = previous.cafile
    else:
        trusted = None
    if username is None:
        if password_stdin:
            usage_error("with --password-stdin, give USER on the command line")
        default = previous.username if previous is not None else None
        username = str(typer.prompt(visual("اسم المستخدم (user)"), default=default)).strip()
    password = (
        read_stdin_line("password")
        if password_stdin
        else ask_secret(f"كلمة المرور لـ {username} (password)")
    )
    server_api = ApiClient(address, cafile=trusted)
    body: dict[str, Any] = {"username": username, "password": password}
    try:
        issued = server_api.post("/sessions", body)
    except ApiError as exc:
        if exc.code != "password_change_required":
            raise
        say(
            visual(
                "كلمة مرور لمرة واحدة: اختر كلمة مرورك الآن "
                "(a one-time password: choose your own now)"
            )
        )
        body["new_password"] = ask_new_password(password_stdin)
        issued = server_api.post("/sessions", body)
    if previous is not None and previous.server == address:
        # The session this one replaces ends now rather than at its expiry.
        with suppress(ApiError, ClientError):
            ApiClient(address, previous.token, cafile=trusted).delete("/sessions/current")
    session = client.SignedIn(address, issued["token"], issued["username"], trusted)
    client.save_session(session)
    roles = ", ".join(issued.get("roles") or [])
    say(
        f"signed in as {issued['username']} ({roles}) at {address}; "
        f"session until {local_time(issued.get('expires_at'))}"
    )


@app.command("logout")
def logout() -> None:
    """End your session (at the server, and on this machine)."""
    session = client.load_session()
    if session is None:
        say("not signed in")
        return
    try:
        ApiClient.signed_in(session).delete("/sessions/current")
    except ApiError as exc:
        if exc.code != "signin_required":  # already ended: nothing more to end
            client.forget_session()
            fail(f"{exc}; the session was forgotten here")
    except ClientError as exc:
        client.forget_session()
        fail(f"{exc}; forgotten here, but the server keeps the session until it expires")
    client.forget_session()
    say(f"signed out ({session.username})")


@app.command("whoami")
def whoami(as_json: JsonOption = False) -> None:
    """Who you are signed in as: your roles, shift and callback capacity, and when your
    session ends."""
    session = client.load_session()
    me = ApiClient.signed_in(session).get("/whoami")
    if as_json:
        emit_json(me)
        return
    assert session is not None
    say(f"{me['username']} · {visual(me.get('display_name') or '')}")
    say(f"roles: {', '.join(me.get('roles') or [])}")
    if me.get("department"):
        say(f"department: {visual(me['department'])}")
    if me.get("extension"):
        say(f"extension: {me['extension']}")
    say(f"shift: {shift_text(me)}")
    say(f"capacity: {capacity_text(me)}")
    say(f"server: {session.server}")
    say(f"session until {local_time(me.get('session_expires_at'))}")


@app.command("password")
def password(password_stdin: PasswordStdinOption = False) -> None:
    """Change your own password (your current one, then the new one twice)."""
    server_api = api()
    if password_stdin:
        current = read_stdin_line("current password")
    else:
        current = ask_secret("كلمة المرور الحالية (current password)")
    new = ask_new_password(password_stdin)
    server_api.post("/password", {"current_password": current, "new_password": new})
    say("password changed")


# --- operator commands: the application, imported when one of them runs ---------------------------


def settings() -> Settings:
    # Imported here, not at the top: people's commands must start fast, and they never need
    # the site's config (nor the database and models the application brings).
    from hotline.app.config import load_site_settings

    return load_site_settings(_state["config"])


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the newest migration and make the site's keys where
    missing (operator; on PostgreSQL as the owner, database.owner_url, which also grants the
    runtime role)."""
    from hotline.app.operator import create_site_keys, upgrade_database

    site = settings()
    for line in upgrade_database(site):
        say(line)
    say(f"site keys in place: {create_site_keys(site)}")


@db_app.command("roles")
def db_roles(
    apply: Annotated[
        bool, typer.Option("--apply", help="Run the SQL as the owner (database.owner_url).")
    ] = False,
    runtime_role: Annotated[
        str | None,
        typer.Option(
            "--runtime-role",
            metavar="NAME",
            help="The server's role (default: database.url's user, or hotline_runtime).",
        ),
    ] = None,
) -> None:
    """PostgreSQL: print (or apply) the SQL that makes the server's role least-privilege
    (operator)."""
    from hotline.app.operator import database_roles

    result = database_roles(settings(), runtime_role, apply=apply)
    if result.sql is None:  # SQLite
        say(visual(result.note))
        return
    sys.stdout.write(result.sql)
    if apply:
        say(result.note)
    else:  # the SQL alone on stdout, so it can go to psql as it is
        say_error("note", result.note)


# --- agents ---------------------------------------------------------------------------------------


# The options of an agent's details, shared by add and edit (the server checks them all).
NameOption = Annotated[str, typer.Option("--name", help="Display name.")]
RoleOption = Annotated[
    list[str], typer.Option("--role", help="agent, supervisor, qa or admin (repeat).")
]
DepartmentOption = Annotated[
    str | None, typer.Option(help="Department (see config cases.departments).")
]
LanguageOption = Annotated[
    list[str] | None, typer.Option("--language", help="Languages spoken (repeat).")
]
SkillOption = Annotated[
    list[str] | None, typer.Option("--skill", help="Skills, e.g. billing (repeat).")
]
ExtensionOption = Annotated[str | None, typer.Option(help="Phone extension for callbacks.")]
ShiftDayOption = Annotated[
    list[str] | None, typer.Option("--shift-day", metavar="DAY", help="mon..sun (repeat).")
]
ShiftStartOption = Annotated[
    str | None, typer.Option(metavar="HH:MM", help="Shift start (site time zone).")
]
ShiftEndOption = Annotated[
    str | None, typer.Option(metavar="HH:MM", help="Shift end (site time zone).")
]
CapacityOption = Annotated[
    int | None, typer.Option(min=1, help="Open callbacks at once (default: config).")
]


class Clearable(StrEnum):
    DEPARTMENT = "department"
    EXTENSION = "extension"
    SKILLS = "skills"
    SHIFT = "shift"
    CAPACITY = "capacity"


# What clearing each sets (AgentChanges: null is the site's default).
CLEARED: dict[Clearable, dict[str, Any]] = {
    Clearable.DEPARTMENT: {"department": None},
    Clearable.EXTENSION: {"extension": None},
    Clearable.SKILLS: {"skills": []},
    Clearable.SHIFT: {"shift_days": [], "shift_start": None, "shift_end": None},
    Clearable.CAPACITY: {"capacity": None},
}


@agents_app.command("add")
def agents_add(
    username: Annotated[str, typer.Argument(metavar="USER", help="The agent's user name.")],
    name: NameOption,
    role: RoleOption,
    department: DepartmentOption = None,
    language: LanguageOption = None,
    skill: SkillOption = None,
    extension: ExtensionOption = None,
    shift_day: ShiftDayOption = None,
    shift_start: ShiftStartOption = None,
    shift_end: ShiftEndOption = None,
    capacity: CapacityOption = None,
    bootstrap: Annotated[
        bool,
        typer.Option(
            "--bootstrap",
            help="The site's first admin, on the server host, as the account that runs the "
            "server (no server needed; refused once the site has an admin).",
        ),
    ] = False,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Add an agent (admins); they get a one-time password to hand over.

    The site's very first admin is added with --bootstrap on the server host instead."""
    if bootstrap:
        bootstrap_admin(username, name, role, password_stdin)
        return
    body = {
        "username": username,
        "display_name": name,
        "roles": role,
        "department": department,
        "languages": language or ["ar"],
        "skills": skill or [],
        "extension": extension,
        "shift_days": shift_day or [],
        "shift_start": check_time(shift_start, "--shift-start"),
        "shift_end": check_time(shift_end, "--shift-end"),
        "capacity": capacity,
    }
    added = api().post("/agents", {k: v for k, v in body.items() if v is not None})
    agent = added["agent"]
    say(f"added agent {agent['username']} ({', '.join(agent['roles'])})")
    hand_over(agent["username"], added["one_time_password"])


@agents_app.command("edit")
def agents_edit(
    username: Annotated[str, typer.Argument(metavar="USER", help="The agent's user name.")],
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="agent, supervisor, qa or admin (repeat; replaces all)."),
    ] = None,
    department: DepartmentOption = None,
    language: LanguageOption = None,
    skill: SkillOption = None,
    extension: ExtensionOption = None,
    shift_day: ShiftDayOption = None,
    shift_start: ShiftStartOption = None,
    shift_end: ShiftEndOption = None,
    capacity: CapacityOption = None,
    clear: Annotated[
        list[Clearable] | None,
        typer.Option(
            "--clear",
            metavar="FIELD",
            help="department, extension, skills, shift (back to business hours) or capacity "
            "(back to the config's) (repeat).",
        ),
    ] = None,
) -> None:
    """Change an agent's details (admins): only the options given change; a list option
    (--role, --language, --skill, --shift-day) replaces the whole list."""
    changes: dict[str, Any] = {}
    for field in clear or []:
        changes |= CLEARED[field]
    given = {
        "display_name": name,
        "roles": role,
        "department": department,
        "languages": language,
        "skills": skill,
        "extension": extension,
        "shift_days": shift_day,
        "shift_start": check_time(shift_start, "--shift-start"),
        "shift_end": check_time(shift_end, "--shift-end"),
        "capacity": capacity,
    }
    both = set(changes) & {key for key, value in given.items() if value is not None}
    if both:
        usage_error(f"--clear and a new value for the same detail: {', '.join(sorted(both))}")
    changes |= {key: value for key, value in given.items() if value is not None}
    if not changes:
        usage_error("nothing to change: give at least one option (see --help)")
    edited = api().patch(f"/agents/{quoted(username)}", changes)
    agent, changed = edited["agent"], edited["changed"]
    if not changed:
        say(f"agent {agent['username']}: nothing changed (already so)")
        return
    say(f"agent {agent['username']} changed:")
    for field, (was, now) in changed.items():
        say(f"  {field}: {visual(detail_text(was))} → {visual(detail_text(now))}")


def detail_text(value: Any) -> str:
    if value is None or value == []:
        return "—"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def shift_text(agent: dict[str, Any]) -> str:
    """mon-thu 08:00-16:00, or the site's business hours when the agent has no shift."""
    days = [day for day in WEEKDAYS if day in (agent.get("shift_days") or [])]
    hours = ""
    if agent.get("shift_start") and agent.get("shift_end"):
        hours = f"{agent['shift_start']}-{agent['shift_end']}"
    if not days and not hours:
        return "business hours"
    return " ".join(filter(None, (day_ranges(days), hours)))


def day_ranges(days: Sequence[str]) -> str:
    """Days in week order with runs shortened: mon, tue, wed, fri -> mon-wed,fri; a run across
    the week's end reads from its start: sun, mon, tue, thu -> sun-tue,thu."""
    chosen = set(days)
    if len(chosen) == len(WEEKDAYS):
        return "every day"
    first = 0
    while WEEKDAYS[first] in chosen and WEEKDAYS[first - 1] in chosen:
        first -= 1  # the run holding Monday starts before it
    week = WEEKDAYS[first:] + WEEKDAYS[:first]
    runs: list[list[str]] = []
    previous = ""
    for day in week:
        if day in chosen:
            if previous in chosen and runs:
                runs[-1].append(day)
            else:
                runs.append([day])
        previous = day
    return ",".join(run[0] if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def capacity_text(agent: dict[str, Any]) -> str:
    effective = agent.get("effective_capacity")
    own = agent.get("capacity")
    return f"{effective}" if own is not None else f"{effective} (site default)"


def bootstrap_admin(username: str, name: str, roles: list[str], password_stdin: bool) -> None:
    """The first admin, written by the operator's process straight into the site's database."""
    if "admin" not in roles:
        usage_error("--bootstrap adds the site's first admin: give --role admin")
    from hotline.app.operator import bootstrap, site_folder

    site = settings()
    new_password = ask_new_password(password_stdin)
    agent = bootstrap(
        site,
        site_folder(site),
        username=username,
        display_name=name,
        password=new_password,
        roles=tuple(roles),
    )
    say(f"added agent {agent.username} ({', '.join(agent.roles)}): sign in with hotline login")


def agent_state(agent: dict[str, Any]) -> str:
    states = ["معطل (disabled)"] if not agent.get("active", True) else []
    return "، ".join([*states, "مقفل (locked)"] if agent.get("locked") else states)


# Languages are in --json and --csv: the shift and capacity matter more on one screen.
AGENT_COLUMNS = (
    Column("username", "المستخدم", whole=True),
    Column("display_name", "الاسم"),
    Column("roles", "الأدوار"),
    Column("department", "القسم"),
    Column("extension", "التحويلة", whole=True),
    Column("shift", "المناوبة", shown=shift_text),
    Column(
        "effective_capacity",
        "السعة",
        shown=lambda agent: (
            f"{agent.get('effective_capacity')}"
            + ("" if agent.get("capacity") is not None else "*")
        ),
    ),
    Column("active", "الحالة", shown=agent_state),
)


@agents_app.command("list")
def agents_list(as_json: JsonOption = False, as_csv: CsvOption = False) -> None:
    """List agents with their roles, shift and callback capacity."""
    rows: list[dict[str, Any]] = api().get("/agents")
    show_listing(
        Listing(rows),
        AGENT_COLUMNS,
        empty="لا يوجد موظفون (no agents)",
        as_json=as_json,
        as_csv=as_csv,
    )
    if rows and not (as_json or as_csv):
        say("* the site's default capacity (callbacks.agent_capacity)")


UserArgument = Annotated[str, typer.Argument(metavar="USER", help="The agent's user name.")]


@agents_app.command("disable")
def agents_disable(username: UserArgument) -> None:
    """Disable an agent: they cannot sign in, and every session of theirs ends (admins)."""
    disabled = api().post(f"/agents/{quoted(username)}/disable")
    ended = disabled["sessions_ended"]
    sessions = "no session was open" if not ended else f"{ended} session(s) ended now"
    say(f"agent {disabled['agent']['username']} disabled: cannot sign in; {sessions}")


@agents_app.command("enable")
def agents_enable(username: UserArgument) -> None:
    """Enable a disabled agent again (admins)."""
    agent = api().post(f"/agents/{quoted(username)}/enable")["agent"]
    say(f"agent {agent['username']} enabled")


@agents_app.command("reset-password")
def agents_reset_password(username: UserArgument) -> None:
    """A new one-time password for an agent, unlocking the account (admins)."""
    reset = api().post(f"/agents/{quoted(username)}/password-reset")
    hand_over(reset["agent"]["username"], reset["one_time_password"])


# --- cases ----------------------------------------------------------------------------------------


def status_label(case: dict[str, Any]) -> str:
    # No brackets: bidi mirrors them when an Arabic label precedes Latin text.
    return f"{case.get('status_label_ar') or ''} · {case['status']}"


LimitOption = Annotated[
    int, typer.Option(min=1, max=10_000, help="At most this many (the rest is counted).")
]
AfterOption = Annotated[
    str | None,
    typer.Option(
        "--after", metavar="REF", help="The next page: the cases after this one (as printed)."
    ),
]
AllOption = Annotated[bool, typer.Option("--all", help="Every match, page after page.")]
# A page --all asks for: the most the server gives at once.
ALL_PAGE = 10_000


@dataclasses.dataclass
class Listing:
    """Rows of a listing and what the server left after them: ``more`` rows (at least that many
    when not ``more_exact``), the next page asked ``after`` this key (None: with --limit)."""

    rows: list[dict[str, Any]]
    more: int = 0
    more_exact: bool = True
    after: str | None = None


def fetch_listing(
    path: str,
    key: str,
    query: dict[str, Any],
    *,
    limit: int,
    after: str | None = None,
    every: bool = False,
) -> Listing:
    """One page of ``path`` (the server's page: its rows under ``key``, ``more``,
    ``more_exact``, ``after``), or with ``every`` all of them, a page at a time after the last
    row of the one before."""
    rows: list[dict[str, Any]] = []
    while True:
        asked = query | {"limit": ALL_PAGE if every else limit}
        page = api().get(path, asked | ({} if after is None else {"after": after}))
        rows.extend(page[key])
        after = page.get("after")
        if not every or not page["more"] or after is None:
            return Listing(rows, page["more"], page["more_exact"], after)


def when(key: str) -> Callable[[dict[str, Any]], str]:
    """A listing's date column: the server's time as people read it, short."""
    return lambda row: local_time(row.get(key), short=True)


def seconds_text(row: dict[str, Any]) -> str:
    seconds = row.get("duration_seconds")
    return "" if seconds is None else f"{seconds:.0f}s"


def show_listing(
    listing: Listing,
    columns: Sequence[Column],
    *,
    empty: str,
    as_json: bool = False,
    as_csv: bool = False,
) -> None:
    """The one rendering of every listing: the server's rows as JSON or CSV, else a table at
    the terminal's width (cli_listing: Arabic wrapped then reordered, columns mirrored,
    references, numbers and dates never cut), or ``empty``; then how many more there are (on
    standard error with --json or --csv, so standard output stays the data)."""
    if as_json:
        emit_json(listing.rows)
    elif as_csv:
        emit_csv(listing.rows)
    elif not listing.rows:
        say(visual(empty))
    else:
        for line in table_lines(columns, listing.rows, width=out().width, mode=bidi()):
            say(line)
    if listing.more:
        line = visual(more_line(listing.more, listing.more_exact, listing.after))
        if as_json or as_csv:
            sys.stderr.write(inert(line) + "\n")
        else:
            say(line)


CASE_COLUMNS = (
    Column("reference", "المرجع", whole=True),
    Column("status", "الحالة"),
    Column("category", "التصنيف"),
    Column("caller_number", "المتصل", whole=True),
    Column("created_at", "التاريخ", whole=True, shown=when("created_at")),
    Column(
        "text",
        "الشكوى",
        text=True,
        shown=lambda case: case.get("confirmed_text") or case.get("draft_text") or "",
    ),
)


def show_cases(listing: Listing, as_json: bool, as_csv: bool) -> None:
    show_listing(
        listing, CASE_COLUMNS, empty="لا توجد شكاوى (no cases)", as_json=as_json, as_csv=as_csv
    )


@cases_app.command("list")
def cases_list(
    status: Annotated[
        CaseStatus | None, choice(CaseStatus, "STATUS", "Only cases in this state.")
    ] = None,
    department: Annotated[str | None, typer.Option(help="Only this department.")] = None,
    limit: LimitOption = 50,
    after: AfterOption = None,
    every: AllOption = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Cases you may see, newest first (every listing is audited)."""
    query = {"status": status.value if status else None, "department": department}
    listing = fetch_listing("/cases", "cases", query, limit=limit, after=after, every=every)
    show_cases(listing, as_json, as_csv)


@cases_app.command("search")
def cases_search(
    words: Annotated[
        str | None,
        typer.Argument(
            help="Words of the complaint, all of them (spelling, tashkeel and the article "
            "ال do not matter)."
        ),
    ] = None,
    caller: Annotated[
        str | None, typer.Option(help="The caller's number, in any form (091..., +218 91...).")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(metavar="REF", help="The case's reference number.")
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            metavar="DIGITS", help="The account or line number the caller keyed, exactly."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Registered on or after (2026-11-01, or a date-time).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Registered up to (a date: that day included).")
    ] = None,
    agent: Annotated[
        str | None, typer.Option(metavar="USER", help="Assigned to this agent.")
    ] = None,
    department: Annotated[str | None, typer.Option(help="Only this department.")] = None,
    status: Annotated[
        CaseStatus | None, choice(CaseStatus, "STATUS", "Only cases in this state.")
    ] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only cases past their promised resolution.")
    ] = False,
    limit: LimitOption = 50,
    after: AfterOption = None,
    every: AllOption = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Find cases you may see by words, caller, reference, keyed account number, date, agent,
    department, status or overdue; all the criteria given must hold. Newest first (every
    search is audited)."""
    query = {
        "words": words,
        "caller_number": caller,
        "reference": reference,
        "account": account,
        "since": since,
        "until": until,
        "agent": agent,
        "department": department,
        "status": status.value if status else None,
        "overdue": overdue or None,
    }
    listing = fetch_listing("/cases", "cases", query, limit=limit, after=after, every=every)
    show_cases(listing, as_json, as_csv)


# How the story's entries read (the status moves carry the server's Arabic status label).
ACTION_LABELS = {
    "case.register": "تسجيل (registered)",
    "case.assign": "إسناد (assigned)",
    "case.reroute": "تحويل (re-routed)",
}


def step_label(step: dict[str, Any]) -> str:
    if step.get("detail", {}).get("reopened"):
        return "إعادة فتح (reopened)"
    if step.get("status_label_ar") and step["action"] != "case.register":
        return str(step["status_label_ar"])
    action = str(step["action"])
    return ACTION_LABELS.get(action, action)


def step_detail(step: dict[str, Any]) -> str:
    """What the change said, in one line: who it went to, the level, the reason."""
    detail = step.get("detail") or {}

    def named(key: str) -> str:
        return str(detail.get(f"{key}_label_ar") or detail.get(key) or "-")

    parts = []
    if step["action"] in ("case.assign", "case.reroute"):
        parts.append(f"{named('from')} -> {named('to')}")
    if "level" in detail:
        parts.append(f"المستوى {detail['level']}")
    for key in ("category", "department"):
        if step["action"] == "case.open" and detail.get(key):
            parts.append(named(key))
    for key in ("reason", "why"):
        if detail.get(key):
            parts.append(str(detail[key]))
    return "; ".join(parts)


HISTORY_COLUMNS = (
    Column("at", "التاريخ", whole=True, shown=when("at")),
    Column("by", "بواسطة"),
    Column("action", "التغيير", shown=step_label),
    Column("detail", "التفاصيل", text=True, shown=step_detail),
)
FOLLOWUP_COLUMNS = (
    Column("id", "رقم", whole=True),
    Column("at", "التاريخ", whole=True, shown=when("at")),
    Column("by", "بواسطة"),
    Column("method", "الوسيلة"),
    Column("result", "النتيجة"),
    Column("effort_score", "الجهد"),
    Column("notes", "ملاحظات", text=True),
)
CASE_CALLBACK_COLUMNS = (
    Column("id", "رقم", whole=True),
    Column("status", "الحالة"),
    Column("due_from", "الموعد", whole=True, shown=when("due_from")),
    Column("attempts", "المحاولات"),
    Column("assigned_to", "الموظف"),
    Column("last_result", "آخر نتيجة"),
)
RECORDING_COLUMNS = (
    Column("id", "رقم", whole=True),
    Column("case", "المرجع", whole=True),
    Column("kind", "النوع"),
    Column("agent", "الموظف"),
    Column("duration_seconds", "المدة", shown=seconds_text),
    Column(
        "created_at",
        "التاريخ",
        whole=True,
        shown=lambda item: (
            local_time(item.get("created_at"), short=True)
            + (" (deleted)" if item.get("deleted_at") else "")
        ),
    ),
)


# The account or line number the caller keyed in the IVR (exact, unlike the draft's words).
KEYPAD_LABEL = "رقم الحساب أو الخط"


def fact(label: str, value: str, mode: str) -> None:
    """One "label: value" line, composed in logical order and reordered as a whole (reordered
    apart, the colon lands on the wrong side of an Arabic label)."""
    line = terminal.visual(f"{label}: {value}", mode)
    out().print(line, justify="right" if mode == "visual" else "left")


def section(title: str) -> None:
    out().print()
    out().print(styled((visual(title), "bold")))


def paragraph(text: str, width: int, mode: str) -> None:
    for line in terminal.visual_lines(text, width, mode):
        out().print(line, justify="right" if mode == "visual" else "left")


@cases_app.command("show")
def cases_show(reference: ReferenceArgument, as_json: JsonOption = False) -> None:
    """One case and its story: every change with who and when, follow-ups, callbacks,
    recordings and notes (the read is audited)."""
    case: dict[str, Any] = api().get(f"/cases/{quoted(reference)}")
    if as_json:
        emit_json(case)
        return
    mode = bidi()
    width = max(min(out().width, 100) - 4, 20)
    for label, value in (
        ("رقم الشكوى", case.get("reference") or ""),
        ("الحالة", status_label(case)),
        ("التصنيف", case.get("category_label_ar") or case.get("category") or ""),
        ("القسم", case.get("department_label_ar") or case.get("department") or ""),
        ("الأولوية", case.get("priority_label_ar") or case.get("priority") or ""),
        ("المتصل", case.get("caller_number") or ""),
        (KEYPAD_LABEL, case.get("keypad_number") or "-"),
        ("الموظف المسؤول", case.get("assigned_to") or "-"),
        ("أكدها", case.get("confirmed_by") or "-"),
        ("تاريخ التسجيل", local_time(case.get("created_at"))),
        ("موعد الحل", local_time(case.get("promised_by"))),
        ("مستوى التصعيد", str(case.get("escalation_level", ""))),
    ):
        # Composed in logical order, then the whole line reordered: the colon ends the label.
        fact(label, value, mode)
    for label, text in (
        ("المسودة (draft)", case.get("draft_text")),
        ("النص المؤكد (confirmed text)", case.get("confirmed_text")),
        ("ملخص الحل (resolution summary)", case.get("resolution_summary")),
        ("سبب الإغلاق (close reason)", case.get("close_reason")),
    ):
        if text:
            section(label)
            paragraph(text, width, mode)
    for title, key, columns in (
        ("السجل (history)", "history", HISTORY_COLUMNS),
        ("المتابعات (follow-ups)", "followups", FOLLOWUP_COLUMNS),
        ("معاودات الاتصال (callbacks)", "callbacks", CASE_CALLBACK_COLUMNS),
        ("التسجيلات (recordings)", "recordings", RECORDING_COLUMNS),
    ):
        if case.get(key):
            section(title)
            show_listing(Listing(case[key]), columns, empty="")
    notes = case.get("notes") or []
    if notes:
        section("ملاحظات داخلية (internal notes)")
        for note in notes:
            out().print(
                styled(
                    (f"{local_time(note.get('at'))}  {note.get('by') or '-'}  #{note['id']}", "dim")
                )
            )
            paragraph(note.get("text") or "", width, mode)


@cases_app.command("resolve")
def cases_resolve(
    reference: ReferenceArgument,
    summary: Annotated[str, typer.Option(help="What was done to fix it.")],
) -> None:
    """Record the resolution; a follow-up callback is requested."""
    case = api().post(f"/cases/{quoted(reference)}/resolve", {"summary": summary})
    say(f"case {case['reference']}: {case['status']}")


@cases_app.command("close")
def cases_close(
    reference: ReferenceArgument,
    reason: Annotated[
        str | None,
        typer.Option(help="Required to close without a satisfied follow-up (supervisors)."),
    ] = None,
) -> None:
    """Close formally (after a satisfied follow-up)."""
    body = {} if reason is None else {"reason": reason}
    case = api().post(f"/cases/{quoted(reference)}/close", body)
    say(f"case {case['reference']}: {case['status']}")


@cases_app.command("escalate")
def cases_escalate(
    reference: ReferenceArgument, reason: Annotated[str, typer.Option(help="Why.")]
) -> None:
    """Raise the case one management level."""
    case = api().post(f"/cases/{quoted(reference)}/escalate", {"reason": reason})
    say(f"case {case['reference']}: {case['status']}, level {case['escalation_level']}")


@cases_app.command("start")
def cases_start(reference: ReferenceArgument) -> None:
    """Start work on a case (open or escalated -> in_progress); an unassigned case becomes
    yours."""
    case = api().post(f"/cases/{quoted(reference)}/start")
    say(visual(f"بدأ العمل على الشكوى (work started): case {case['reference']}: {case['status']}"))


@cases_app.command("assign")
def cases_assign(
    reference: ReferenceArgument,
    to: Annotated[str, typer.Option("--to", metavar="USER", help="The agent who takes it.")],
) -> None:
    """Give a case to an agent: take an unassigned case of your department (--to yourself);
    assigning others or reassigning is for supervisors (audited)."""
    case = api().post(f"/cases/{quoted(reference)}/assign", {"to": to})
    say(visual(f"أسندت الشكوى (assigned): case {case['reference']} to {case['assigned_to']}"))


@cases_app.command("note")
def cases_note(
    reference: ReferenceArgument,
    text: Annotated[
        str | None,
        typer.Option(help="The note; without it, the note is read from standard input."),
    ] = None,
) -> None:
    """Add an internal note to a case (never told to the caller; kept as written)."""
    server_api = api()
    if text is None:
        if sys.stdin.isatty():
            fail("give the note with --text, or pipe it on standard input")
        text = sys.stdin.read()
    note = server_api.post(f"/cases/{quoted(reference)}/notes", {"text": text})
    say(visual(f"أضيفت الملاحظة (note added): {note['id']} on case {reference}"))


@cases_app.command("reopen")
def cases_reopen(
    reference: ReferenceArgument,
    reason: Annotated[str, typer.Option(help="Why it goes back to work (kept in its history).")],
) -> None:
    """Reopen a closed case: back to in_progress (supervisors; the reason is audited)."""
    case = api().post(f"/cases/{quoted(reference)}/reopen", {"reason": reason})
    say(visual(f"أعيد فتح الشكوى (reopened): case {case['reference']}: {case['status']}"))


@followup_app.command("log")
def followup_log(
    reference: ReferenceArgument,
    method: Annotated[
        ContactMethod, choice(ContactMethod, "METHOD", "How the customer was reached.")
    ],
    result: Annotated[FollowUpResult, choice(FollowUpResult, "RESULT", "What the customer said.")],
    effort: Annotated[
        int | None, typer.Option(help="How easy it was for the customer (1..scale).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Notes.")] = None,
    reroute: Annotated[
        str | None, typer.Option(metavar="DEPARTMENT", help="Re-route the case to this department.")
    ] = None,
) -> None:
    """Record a follow-up contact and its result."""
    body = {
        "method": method.value,
        "result": result.value,
        "effort_score": effort,
        "notes": note,
        "reroute": reroute,
    }
    followup = api().post(
        f"/cases/{quoted(reference)}/followups", {k: v for k, v in body.items() if v is not None}
    )
    say(f"follow-up {followup['id']} logged: {followup['result']}")


# --- report ---------------------------------------------------------------------------------------


@app.command("report")
def report(
    since: Annotated[str | None, typer.Option(metavar="DATE", help="From this date (ISO).")] = None,
    until: Annotated[
        str | None, typer.Option(metavar="DATE", help="Up to this date (ISO).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Volumes, CSAT (strict and lenient), CES and SLA met/missed."""
    query = {"since": since, "until": until}
    figures: dict[str, Any] = api().get("/report", query)
    if as_json:
        emit_json(figures)
        return

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    rows = [
        {"figure": label, "value": value}
        for label, value in (
            ("الشكاوى (cases)", str(figures["cases_total"])),
            ("المكالمات (calls)", str(figures["calls_total"])),
            ("مكالمات متروكة (abandoned)", str(figures["calls_abandoned"])),
            ("متابعات مجابة (answered follow-ups)", str(figures["followups_answered"])),
            ("CSAT strict", percent(figures["csat_strict"])),
            ("CSAT lenient", percent(figures["csat_lenient"])),
            ("CES (easy)", percent(figures["ces"])),
            ("SLA met / missed", f"{figures['sla_met']} / {figures['sla_missed']}"),
            ("overdue open cases", str(figures["sla_overdue_open"])),
        )
    ]
    labels = figures.get("cases_by_status_label_ar") or {}
    rows += [
        {"figure": f"{labels.get(status) or status} (cases {status})", "value": str(count)}
        for status, count in sorted(figures["cases_by_status"].items())
    ]
    columns = (Column("figure", "المؤشر"), Column("value", "القيمة", whole=True))
    show_listing(Listing(rows), columns, empty="")


# --- drafts and review (agents) -------------------------------------------------------------------


def show_reminder(server_api: ApiClient) -> None:
    counts = server_api.get("/callbacks/reminders")
    if counts["due"] or counts["overdue"]:
        line = f"مكالمات المتابعة: {counts['due']} مستحقة، {counts['overdue']} متأخرة"
        english = f"(callbacks due {counts['due']}, overdue {counts['overdue']})"
        out().print(styled((visual(line), "bold magenta"), f"  {english}"))


def render_draft(opened: dict[str, Any], text: str) -> None:
    from rich.text import Text

    case = opened["case"]
    recording = opened.get("recording")
    seconds = recording.get("duration_seconds") if recording else None
    mode = bidi()
    out().rule()
    for label, value in (
        ("رقم الشكوى", case.get("reference") or ""),
        ("المتصل", case.get("caller_number") or "—"),
        (KEYPAD_LABEL, case.get("keypad_number") or "—"),
        ("الوقت", local_time(case.get("created_at"))),
        ("مدة التسجيل", "—" if seconds is None else f"{seconds:.0f} s"),
        ("حالة المسودة", case.get("draft_state_label_ar") or case.get("draft_state") or "—"),
    ):
        fact(label, value, mode)
    width = max(min(out().width, 100) - 2, 20)
    if text != (case.get("draft_text") or ""):
        lines = [Text(line) for line in terminal.visual_lines(text, width, mode)]
    else:
        marked = [(str(word), bool(doubtful)) for word, doubtful in opened["marked_words"]]
        lines = terminal.highlighted_lines(marked, width, mode)
    if not text.strip():
        notes = {
            "no_speech": "لم يُسمع كلام في التسجيل (no speech)",
            "failed": "تعذر التفريغ: اكتب الشكوى من التسجيل (transcription failed)",
            "transcribing": "التفريغ جارٍ (still transcribing)",
        }
        note = notes.get(case.get("draft_state") or "", "لا يوجد نص")
        lines = [Text(terminal.visual(note, mode), style="italic")]
    for line in lines:
        out().print(line, justify="right" if mode == "visual" else "left")
    numbers = opened.get("numbers") or []
    if numbers:
        section("الأرقام كما قيلت (numbers said)")
        for number in numbers:
            # Digits first, then the words Whisper heard: "0912 = صفر تسعة واحد اتنين".
            paragraph(f"{number.get('digits')} = {number.get('spoken')}", width, mode)


def choose(title: str, options: Sequence[str], default: str | None = None) -> str:
    """One of ``options`` (the server's list), by number or by name, asked until it is one."""
    for number, option in enumerate(options, 1):
        say(f"  {number}. {visual(option)}")
    while True:
        picked = str(typer.prompt(visual(title), default=default or None)).strip()
        if picked in options:
            return picked
        if picked.isdigit() and 1 <= int(picked) <= len(options):
            return options[int(picked) - 1]
        say_error("error", f"choose 1-{len(options)}")


def edit_text(text: str) -> str | None:
    """``text`` edited in $VISUAL or $EDITOR (a command line, maybe with options), as typed;
    None when the editor failed (it could not be started, it exited with an error, as vim's
    :cq does, or it left no text to read): said in one line, and the text stays as it was."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix="hotline-edit-") as folder:
        path = Path(folder) / "draft.txt"
        path.write_text(text, encoding="utf-8")
        status = subprocess.run(f"{editor} {shlex.quote(str(path))}", shell=True, check=False)
        # The shell's 126 and 127: the command could not be run, or was not found.
        if status.returncode in (126, 127):
            why = f"the editor {editor!r} could not be started (set $EDITOR or $VISUAL)"
        elif status.returncode != 0:
            why = f"the editor {editor!r} stopped with exit code {status.returncode}"
        else:
            try:
                return path.read_text(encoding="utf-8")
            except FileNotFoundError:
                why = f"the editor {editor!r} left no file"
            except UnicodeDecodeError:
                why = f"the editor {editor!r} wrote text that is not UTF-8"
    say_error("error", f"{visual('لم يُحفظ التحرير والنص كما كان')} ({why}: the text is as it was)")
    return None


class Unsent:
    """Edited texts a confirm could not deliver, kept until a confirm succeeds:
    $XDG_STATE_HOME/hotline/unsent/REF.txt, readable by their owner only."""

    @staticmethod
    def path(reference: str) -> Path:
        return client.state_home() / "unsent" / f"{Path(reference).name}.txt"

    @classmethod
    def keep(cls, reference: str, text: str) -> Path:
        path = cls.path(reference)
        client.write_private(path, text)
        return path

    @classmethod
    def find(cls, reference: str) -> tuple[str, datetime] | None:
        path = cls.path(reference)
        try:
            return path.read_text(encoding="utf-8"), datetime.fromtimestamp(path.stat().st_mtime)
        except FileNotFoundError:
            return None

    @classmethod
    def drop(cls, reference: str) -> None:
        cls.path(reference).unlink(missing_ok=True)


class Playback:
    """The draft's call, fetched through the server (audited, checked against its SHA-256) into
    a private temporary folder and played in the background, so the agent can edit while
    listening. The folder goes when the draft is left."""

    def __init__(self, server_api: ApiClient, reference: str, recording_id: int) -> None:
        self.server_api = server_api
        self.reference = reference
        self.recording_id = recording_id
        self.folder: tempfile.TemporaryDirectory[str] | None = None
        self.player: subprocess.Popen[bytes] | None = None
        self.player_name = ""

    @property
    def reason(self) -> str:
        return f"review draft {self.reference}"

    def play(self) -> None:
        from cli_player import INSTALL_HINT, find_player

        command = find_player()
        if command is None:
            sys.stderr.write(f"{INSTALL_HINT}\n")
            return
        self.stop()
        if self.folder is None:
            self.folder = tempfile.TemporaryDirectory(prefix="hotline-play-")
        folder = Path(self.folder.name)
        audio = next(folder.glob("*.wav"), None)
        if audio is None:
            query = {"purpose": "play", "reason": self.reason}
            path = f"/recordings/{self.recording_id}/audio"
            audio = self.server_api.download(path, query, folder).path
        self.player_name = Path(command[0]).name
        self.player = subprocess.Popen(
            [*command, str(audio)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        say(visual("يُشغَّل التسجيل (playing the call)"))

    def stop(self) -> None:
        """Stop the player (if it still plays) and tell the server how the playback went: a
        player the agent stopped played until then; one that failed says its exit code."""
        if self.player is None:
            return
        if self.player.poll() is None:
            self.player.terminate()
            self.player.wait()
            exit_status = 0
        else:
            exit_status = self.player.returncode
        self.player = None
        error = (
            None if exit_status == 0 else f"{self.player_name} stopped with exit code {exit_status}"
        )
        try:
            report_playback(self.server_api, self.recording_id, self.reason, error)
        except (ApiError, ClientError) as exc:
            # The draft is what the agent is doing; the report's failure is said, not fatal.
            sys.stderr.write(f"{inert(str(exc))}\n")

    def close(self) -> None:
        self.stop()  # the call belongs to the draft being left
        if self.folder is not None:
            self.folder.cleanup()
            self.folder = None


@contextmanager
def playback(server_api: ApiClient, opened: dict[str, Any]) -> Iterator[Playback | None]:
    recording = opened.get("recording")
    if recording is None:
        yield None
        return
    player = Playback(server_api, opened["case"]["reference"], int(recording["id"]))
    try:
        yield player
    finally:
        player.close()


@dataclasses.dataclass(frozen=True)
class Refused:
    """The server refused what was sent (the server's one line), to be said under the draft."""

    message: str


# What was sent is refused: a category the site does not have, a text over its limit (400), a
# body over the server's (413).
REFUSALS_OF_WHAT_WAS_SENT = (400, 413)


@contextmanager
def keeping(reference: str, text: str, edited: bool) -> Iterator[None]:
    """Any failure of what is done inside first keeps an edited text (Unsent), offered again
    when the draft is next opened (so quitting after a refusal loses nothing either)."""
    try:
        yield
    except (ApiError, ClientError):
        if edited:
            keep_unsent(reference, text)
        raise


def confirm_kept(
    server_api: ApiClient, reference: str, text: str, edited: bool, body: dict[str, Any]
) -> dict[str, Any] | Refused:
    """Confirm, keeping an edited text on any failure. A refusal of what was sent is returned,
    to change it and confirm again; any other (the server unreachable, the database down, the
    session ended, the draft changed or taken meanwhile) is then reported."""
    try:
        with keeping(reference, text, edited):
            case: dict[str, Any] = server_api.post(f"/drafts/{quoted(reference)}/confirm", body)
    except ApiError as exc:
        if exc.status in REFUSALS_OF_WHAT_WAS_SENT:
            return Refused(exc.message)
        raise
    Unsent.drop(reference)
    return case


def keep_unsent(reference: str, text: str) -> None:
    kept = Unsent.keep(reference, text)
    message = (
        f"حُفظ نصك المعدّل في {kept} ويُعرض عليك عند فتح المسودة مجدداً "
        f"(your edited text is kept in {kept} and offered when you open this draft again)"
    )
    sys.stderr.write(visual(message) + "\n")


def offer_unsent(reference: str, text: str) -> str:
    found = Unsent.find(reference)
    if found is None or found[0] == text:
        return text
    saved, when = found
    stamp = when.strftime("%Y-%m-%d %H:%M")
    question = f"تعديل لم يُرسل من {stamp}: استخدامه؟ (an unsent edit from {stamp}: use it?)"
    return saved if typer.confirm(visual(question), default=True) else text


@dataclasses.dataclass
class DraftLease:
    """The draft an agent has open: the server leased it to them when it was opened (for the
    site's drafts.lease_minutes); each renewal starts the lease again, and it is given back when
    the draft is left undecided (skip, quit, Ctrl-C, a failure). ``version``: the case as the
    agent has it, sent with every change, so one made meanwhile by someone else is refused."""

    server_api: ApiClient
    reference: str
    version: int
    decided: bool = False

    def change(self) -> dict[str, Any]:
        return {"version": self.version}

    def renew(self) -> None:
        case = self.server_api.post(f"/drafts/{quoted(self.reference)}/renew", self.change())
        self.version = int(case["version"])

    def release(self) -> None:
        if self.decided:
            return
        # Best effort: a lease that ran out, or that someone took over, needs no giving back
        # (the version refuses it), and a server gone away frees it when the lease runs out.
        with suppress(ApiError, ClientError):
            self.server_api.post(f"/drafts/{quoted(self.reference)}/release", self.change())


@contextmanager
def opened_draft(
    server_api: ApiClient, reference: str
) -> Iterator[tuple[dict[str, Any], DraftLease]]:
    """The draft, opened (and so leased to the agent) until the block is left."""
    opened: dict[str, Any] = server_api.get(f"/drafts/{quoted(reference)}")
    lease = DraftLease(server_api, reference, int(opened["case"]["version"]))
    try:
        yield opened, lease
    finally:
        lease.release()


def review_one(server_api: ApiClient, reference: str) -> bool:
    """One draft, until it is confirmed, rejected or skipped. False means: stop reviewing."""
    with opened_draft(server_api, reference) as (opened, lease):
        draft_text = opened["case"].get("draft_text") or ""
        text = offer_unsent(reference, draft_text)
        refusal: Refused | None = None
        with playback(server_api, opened) as player:
            while True:
                render_draft(opened, text)
                if refusal is not None:  # under the text, however long, where it is seen
                    say_error("refused", refusal.message)
                    refusal = None
                keys = "[a]ccept  [e]dit  [p]lay  [r]eject  [s]kip  [q]uit"
                if player is None:
                    keys = keys.replace("[p]lay  ", "")
                action = str(typer.prompt(keys, default="a")).strip().lower()[:1]
                if action in ("e", "p"):
                    # The agent is at work on it: the lease starts again (before and after the
                    # editor, which may take a while).
                    with keeping(reference, text, text != draft_text):
                        lease.renew()
                if action == "e":
                    edited = edit_text(text)
                    if edited is not None:
                        text = edited.strip() or text
                    with keeping(reference, text, text != draft_text):
                        lease.renew()
                elif action == "p":
                    if player is None:
                        say(visual("لا يوجد تسجيل لهذه المسودة (no recording)"))
                    else:
                        player.play()
                elif action == "a":
                    if not text.strip():
                        say(visual("النص فارغ: حرّر الشكوى أولاً (empty: edit first)"))
                        continue
                    site = server_api.get("/site")
                    category = choose("التصنيف (category)", site["categories"])
                    department = choose(
                        "القسم (department)", site["departments"], opened["case"].get("department")
                    )
                    body = {"text": text, "category": category, "department": department}
                    body |= lease.change()
                    case = confirm_kept(server_api, reference, text, text != draft_text, body)
                    if isinstance(case, Refused):
                        refusal = case
                        continue
                    lease.decided = True
                    promise = local_time(case.get("promised_by"))
                    opened_line = (f"case {case['reference']} open", "green")
                    out().print(styled(opened_line, f", promised by {promise}"))
                    return True
                elif action == "r":
                    reason = str(typer.prompt(visual("السبب (reason)")))
                    body = {"reason": reason} | lease.change()
                    server_api.post(f"/drafts/{quoted(reference)}/reject", body)
                    lease.decided = True
                    Unsent.drop(reference)
                    say(f"case {reference} rejected")
                    return True
                elif action in ("s", "q"):
                    return action == "s"


@app.command("review")
def review() -> None:
    """Your queue of drafts, oldest first: read, listen, edit ($EDITOR), confirm or reject each."""
    server_api = api()
    show_reminder(server_api)
    skipped: set[str] = set()
    while True:
        queue: list[dict[str, Any]] = server_api.get("/drafts")
        waiting = [case for case in queue if case["reference"] not in skipped]
        if not waiting:
            say(visual("لا توجد مسودات بانتظارك (no drafts waiting)"))
            return
        say(visual(f"مسودات بانتظارك: {len(waiting)}"))
        reference = waiting[0]["reference"] or ""
        skipped.add(reference)
        try:
            if not review_one(server_api, reference):
                return
        except ApiError as exc:
            # Someone else's change won (changed meanwhile, or taken): said, and on to the
            # next draft; an edited text was kept (Unsent) and is offered if this one returns.
            if exc.status != 409:
                raise
            say_error("refused", exc.message)


def leased_text(case: dict[str, Any]) -> str:
    if not case.get("leased_to"):
        return ""
    return f"{case['leased_to']} {local_time(case.get('leased_until'), clock=True)}"


DRAFT_COLUMNS = (
    Column("reference", "المرجع", whole=True),
    Column("caller_number", "المتصل", whole=True),
    Column("created_at", "الوقت", whole=True, shown=when("created_at")),
    Column("leased_to", "يراجعها", shown=leased_text),
    Column("draft_text", "المسودة", text=True),
)


@drafts_app.command("list")
def drafts_list(as_json: JsonOption = False, as_csv: CsvOption = False) -> None:
    """Drafts waiting for you, oldest first; those another agent has open are shown as theirs."""
    drafts: list[dict[str, Any]] = api().get("/drafts", {"taken": "true"})
    show_listing(
        Listing(drafts),
        DRAFT_COLUMNS,
        empty="لا توجد مسودات (no drafts)",
        as_json=as_json,
        as_csv=as_csv,
    )


@drafts_app.command("confirm")
def drafts_confirm(
    reference: ReferenceArgument,
    category: Annotated[str, typer.Option(help="One of config sla.categories.")],
    text: Annotated[
        str | None, typer.Option(help="The confirmed text (default: the draft as is).")
    ] = None,
    department: Annotated[str | None, typer.Option(help="Route to this department.")] = None,
    priority: Annotated[str, typer.Option(help="low, normal, high or urgent.")] = "normal",
) -> None:
    """Confirm a draft: it becomes an open complaint with its promised resolution date."""
    if priority not in PRIORITIES:
        usage_error(f"--priority must be one of {', '.join(PRIORITIES)}")
    server_api = api()
    body = {"text": text, "category": category, "department": department, "priority": priority}
    body = {k: v for k, v in body.items() if v is not None}
    path = f"/drafts/{quoted(reference)}/confirm"
    if text is not None:
        case = server_api.post(path, body)
    else:
        # The draft as it stands: exactly the text fetched, at the version fetched, so a
        # change made in between is refused rather than confirmed unseen.
        with opened_draft(server_api, reference) as (opened, lease):
            body["text"] = opened["case"].get("draft_text") or ""
            case = server_api.post(path, body | lease.change())
            lease.decided = True
    Unsent.drop(reference)
    say(f"case {case['reference']}: open, promised by {local_time(case.get('promised_by'))}")


@drafts_app.command("reject")
def drafts_reject(
    reference: ReferenceArgument,
    reason: Annotated[str, typer.Option(help="Why it is not a complaint.")],
) -> None:
    """Reject a draft that is not a complaint."""
    case = api().post(f"/drafts/{quoted(reference)}/reject", {"reason": reason})
    say(f"case {case['reference']}: {case['status']}")


@drafts_app.command("release")
def drafts_release(reference: ReferenceArgument) -> None:
    """Give back a draft an agent has open (supervisors: anyone's), so others may take it."""
    case = api().post(f"/drafts/{quoted(reference)}/release")
    holder = case["released_from"]
    line = f"أُعيدت المسودة {case['reference']} إلى الطابور"
    say(f"{visual(line)} (draft {case['reference']} released from {holder}'s review)")


# --- callbacks ------------------------------------------------------------------------------------


CALLBACK_COLUMNS = (
    Column("id", "رقم", whole=True),
    Column("case", "المرجع", whole=True, shown=lambda callback: callback.get("case") or "—"),
    Column("phone_number", "المتصل", whole=True),
    Column("agent", "الموظف", shown=lambda callback: callback.get("agent") or "—"),
    Column("status", "الحالة"),
    Column("due_from", "الموعد", whole=True, shown=when("due_from")),
    Column("attempts", "محاولات"),
)


@callbacks_app.command("list")
def callbacks_list(
    mine: Annotated[bool, typer.Option("--mine", help="Only the callbacks you hold.")] = False,
    limit: LimitOption = 50,
    every: AllOption = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Open callbacks (and those that need a written follow-up), due first."""
    server_api = api()
    listing = fetch_listing("/callbacks", "callbacks", {"mine": mine}, limit=limit, every=every)
    if as_json or as_csv:
        show_listing(listing, CALLBACK_COLUMNS, empty="", as_json=as_json, as_csv=as_csv)
        return
    show_reminder(server_api)
    show_listing(listing, CALLBACK_COLUMNS, empty="لا توجد معاودات اتصال (no callbacks)")


def idle_lines(offer: dict[str, Any]) -> list[str]:
    """Why no callback is offered, one line per reason the server gave (Arabic first)."""
    waiting = offer["waiting"]
    seen = local_time(offer.get("scheduler_seen_at"))
    shift = offer.get("shift") or {}
    hours = f"{' '.join(shift.get('days', []))} {shift.get('start')}-{shift.get('end')}"
    lines = {
        "not_an_agent": "لا تُسند إليك مكالمات متابعة (callbacks are given to agents only)",
        "no_scheduler": (
            f"المُجدول لا يعمل منذ {seen}؛ {waiting} مكالمة تنتظر دون تعيين "
            f"(the scheduler is not running since {seen}; {waiting} callbacks wait unassigned: "
            "start hotline serve or hotline scheduler)"
            if seen
            else f"لم يعمل المُجدول قط؛ {waiting} مكالمة تنتظر دون تعيين "
            f"(the scheduler has never run; {waiting} callbacks wait unassigned: "
            "start hotline serve or hotline scheduler)"
        ),
        "off_shift": f"أنت خارج مناوبتك (you are off shift: your shift is {hours})",
        "none_assigned": (
            f"لا توجد مكالمات متابعة مسندة إليك الآن (nothing is assigned to you now; "
            f"{waiting} due callbacks wait for other departments or skills, or their call window)"
            if waiting
            else "لا توجد مكالمات متابعة مستحقة الآن (no callback is due now)"
        ),
    }
    return [lines.get(reason, reason) for reason in offer["reasons"]]


@callbacks_app.command("next")
def callbacks_next(as_json: JsonOption = False) -> None:
    """The callback to make now, or why there is none (no scheduler, off shift...)."""
    offer = api().get("/callbacks/next")
    if as_json:
        emit_json(offer)
        return
    callback = offer["callback"]
    if callback is None:
        for line in idle_lines(offer):
            say(visual(line))
        return
    due = local_time(callback.get("due_from"))
    number, reason = visual(callback["phone_number"] or ""), visual(callback["reason"] or "")
    case = f", case {callback['case']}" if callback.get("case") else ""
    say(
        f"callback {callback['id']}: {number} ({reason}{case}), due {due}, "
        f"attempts {callback['attempts']}"
    )
    say(f"  dial it with: hotline callbacks dial {callback['id']}")


@callbacks_app.command("dial")
def callbacks_dial(
    callback_id: Annotated[
        int, typer.Argument(metavar="ID", help="The callback's id (as callbacks list shows it).")
    ],
) -> None:
    """Ring your phone, then the customer (AMI Originate); the result is stored.

    Checked first, before the PBX is called: you have an extension, the callback is yours and
    still assigned, and the customer is inside their call window now."""
    outcome = api().post(f"/callbacks/{callback_id}/dial", timeout=client.DIAL_TIMEOUT_SECONDS)
    callback = outcome["callback"]
    say(
        f"callback {callback['id']}: {outcome['result']} ({visual(outcome['detail'] or '')}); now "
        f"{callback['status']}, attempt {callback['attempts']} of {outcome['max_attempts']}"
    )
    if outcome["result"] == "answered" and callback.get("case"):
        say(
            f"  log the follow-up: hotline followup log {callback['case']} --method phone "
            "--result ..."
        )


def health_text(item: dict[str, Any]) -> str:
    if item.get("stopped_at") is not None:
        return f"متوقف (stopped at {local_time(item['stopped_at'], short=True)})"
    return "يعمل (ok)" if item.get("healthy") else "صامت (silent)"


COMPONENT_COLUMNS = (
    Column("component", "المكوّن"),
    Column("instance", "النسخة"),
    Column("seen_seconds_ago", "آخر ظهور", shown=lambda item: f"{item['seen_seconds_ago']:.0f}s"),
    Column("healthy", "الصحة", shown=health_text),
    Column(
        "state",
        "الحالة",
        text=True,
        shown=lambda item: ", ".join(f"{k}={v}" for k, v in (item.get("state") or {}).items()),
    ),
)


@app.command("status")
def status(as_json: JsonOption = False) -> None:
    """Live calls, the transcription queue, callbacks due and the health of each component."""
    figures: dict[str, Any] = api().get("/status")
    if as_json:
        emit_json(figures)
        return
    show_listing(
        Listing(figures.get("components") or []),
        COMPONENT_COLUMNS,
        empty="لم يبلّغ أي مكوّن بعد (no component has reported yet: is `hotline serve` running?)",
    )
    oldest = figures.get("oldest_queued_seconds")
    say(
        f"live calls {figures['live_calls']} · transcription queue {figures['queue_depth']} "
        f"(running {figures['running_jobs']}, failed {figures['failed_jobs']}, oldest waiting "
        f"{'—' if oldest is None else f'{oldest:.0f}s'}) · callbacks due "
        f"{figures['callbacks_due']}, overdue {figures['callbacks_overdue']}, written "
        f"follow-ups {figures['callbacks_written']}"
    )


CALL_COLUMNS = (
    Column("caller_number", "المتصل", whole=True),
    Column("started_at", "البداية", whole=True, shown=when("started_at")),
    Column("duration_seconds", "المدة", shown=seconds_text),
    Column("status", "الحالة"),
    Column("case", "المرجع", whole=True),
    Column("linkedid", "المكالمة"),
    Column(
        "recording_path",
        "التسجيل",
        path=True,
        shown=lambda call: Path(call["recording_path"]).name if call.get("recording_path") else "",
    ),
)


@calls_app.command("list")
def calls_list(
    limit: LimitOption = 50,
    every: AllOption = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Recent calls to the hotline, newest first (supervisors, QA, admins; audited)."""
    listing = fetch_listing("/calls", "calls", {}, limit=limit, every=every)
    show_listing(
        listing, CALL_COLUMNS, empty="لا توجد مكالمات (no calls)", as_json=as_json, as_csv=as_csv
    )


# --- operator: the long-running processes and the site's files ------------------------------------


def run_components(*names: str, concurrency: int | None = None) -> None:
    """Start the components after their checks; SIGTERM or SIGINT stops them (operator)."""
    from hotline.app.checks import Check
    from hotline.app.components import run_components as run
    from hotline.app.lifecycle import configure_logging

    site = settings()
    configure_logging(site.logging)

    def on_check(check: Check) -> None:
        mark = ("ok", "green") if check.ok else ("FAILED", "bold red")
        err().print(styled(mark, f" {check.name}: {check.message}"))

    def on_job_done(worker: Any, job: Any) -> None:
        stats = worker.stats
        out().print(
            styled(("✓", "green")),
            f"recording {job.recording_id}: {stats.done} done, {stats.failed} "
            f"failed, {stats.busy} in hand",
        )

    run(site, names, concurrency=concurrency, on_check=on_check, on_job_done=on_job_done)


@app.command("serve")
def serve(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=16,
            help="Transcription threads, each a batch of jobs per model pass "
            "(default: transcription.concurrency, one per core).",
        ),
    ] = None,
) -> None:
    """Listener + FastAGI + transcription worker + scheduler + the HTTP API in one process,
    until SIGTERM.

    Each also runs alone: listen, agi, worker, scheduler, api."""
    run_components("listener", "agi", "worker", "scheduler", "api", concurrency=concurrency)


@app.command("api")
def api_server() -> None:
    """Run the HTTP API people's commands use (server.socket, optional TCP) until SIGTERM."""
    run_components("api")


@app.command("listen")
def listen() -> None:
    """Run the AMI listener until SIGTERM or Ctrl-C: every hotline call stored once."""
    run_components("listener")


@app.command("agi")
def agi() -> None:
    """Run the FastAGI server for the Arabic IVR until SIGTERM or Ctrl-C."""
    run_components("agi")


@app.command("worker")
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=16,
            help="Threads, each a batch of jobs per model pass "
            "(default: transcription.concurrency, one per core).",
        ),
    ] = None,
) -> None:
    """Transcribe queued recordings into drafts until SIGTERM, with a progress display."""
    run_components("worker", concurrency=concurrency)


@app.command("scheduler")
def scheduler() -> None:
    """Run the periodic rules (callback assignment, overdue escalation) until SIGTERM."""
    run_components("scheduler")


@app.command("transcribe")
def transcribe_file(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="The audio file to transcribe.")],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", metavar="PATH", help="A CTranslate2 Whisper directory to use instead."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Transcribe one audio file with the configured model (nothing is stored; operator)."""
    from hotline.app.operator import transcribe_file as transcribe

    result = transcribe(settings(), path, model)
    if as_json:
        emit_json(result.data)
        return
    mode = bidi()
    width = max(min(out().width, 100) - 2, 20)
    for line in terminal.highlighted_lines(result.marked_words, width, mode):
        out().print(line, justify="right" if mode == "visual" else "left")
    if result.no_speech:
        say(terminal.visual("لا كلام في التسجيل (no speech)", mode))
    for digits, spoken in result.numbers:
        say(terminal.visual(f"{digits} = {spoken} (رقم كما قيل، number as said)", mode))
    out().print(styled((str(result.facts), "dim")))


@prompts_app.command("build")
def prompts_build(
    voice: Annotated[
        str | None, typer.Option(help="auto, espeak-ng, mbrola-ar1 or mbrola-ar2.")
    ] = None,
) -> None:
    """Render the IVR's Arabic prompts and digits to 8 kHz WAV (studio recordings are kept)."""
    from hotline.app.operator import build_site_prompts

    folder, built = build_site_prompts(
        settings(), voice, lambda name: err().print(styled((f"rendered {name}", "dim")))
    )
    say(
        f"prompts in {folder} with {built.voice}: {len(built.rendered)} rendered, "
        f"{len(built.cached)} unchanged, {len(built.studio)} studio recordings kept"
    )


@asterisk_app.command("config")
def asterisk_config() -> None:
    """Print this site's extensions.conf contexts, queues.conf queue and manager.conf user.

    The extensions.conf contexts for 15654, the agent queue (queues.conf, members from
    ivr.queue_members and the agents table) and the manager.conf user the listener needs."""
    from hotline.app.operator import asterisk_config as render

    print(render(settings()))


# --- QA, recordings and the audit log -------------------------------------------------------------


VERIFY_PROBLEMS = {"changed": "معدّل", "missing": "مفقود", "unexpected": "غير متوقع"}
VERIFY_COLUMNS = (
    Column("problem", "المشكلة"),
    Column("recording_id", "التسجيل", whole=True),
    Column("case_reference", "المرجع", whole=True),
    # A path is cut in its folders: the file's name is what people look for.
    Column("path", "الملف", path=True),
    Column("note", "ملاحظة"),
)


@qa_app.command("verify")
def qa_verify(
    since: Annotated[
        str | None, typer.Option(metavar="DATE", help="Re-hash recordings since (ISO).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-hash recordings: changed, missing and unexpected files (exit code 1 if any)."""
    body = {} if since is None else {"since": since}
    result: dict[str, Any] = api().post("/qa/verify", body)
    if as_json:
        emit_json(result)
    else:
        say(f"recordings checked: {result['checked']}")
        problems = [
            item | {"problem": label}
            for kind, label in VERIFY_PROBLEMS.items()
            for item in result.get(kind) or []
        ]
        if result["intact"]:
            out().print(styled(("all recordings intact", "green")))
        else:
            show_listing(Listing(problems), VERIFY_COLUMNS, empty="")
    if not result["intact"]:
        raise typer.Exit(ExitCode.REFUSED)


# Why recordings were left out of a sample (recordings.sampling's reasons), for people.
EXCLUDED = {
    "out_of_period": "خارج الفترة (out of the period)",
    "ivr_only": "رسالة المتصل دون موظف (IVR only: no agent on the line)",
    "deleted": "محذوف (deleted by retention)",
    "unverified": "ملفه مفقود عند الاستلام (file missing at ingest)",
    "reviewed": "قيّمته من قبل (scored by you before)",
    "drawn_before": "سُحب لك في عينة سابقة (drawn for you in an earlier sample)",
}


SAMPLE_COLUMNS = (
    Column("recording", "التسجيل", whole=True),
    Column("agent", "الموظف"),
    Column("stratum", "الفئة"),
    Column("case", "المرجع", whole=True),
    Column("recorded_at", "التاريخ", whole=True, shown=when("recorded_at")),
)


@qa_app.command("sample")
def qa_sample(
    period: Annotated[str, typer.Option(help="Recordings of this last period: 24h, 7d, 2w.")],
    per_agent: Annotated[int, typer.Option(min=1, help="Recordings per agent.")],
    seed: Annotated[
        int | None,
        typer.Option(min=0, help="Repeat a sample with its seed (over its first period)."),
    ] = None,
    include_drawn: Annotated[
        bool,
        typer.Option(
            "--include-drawn", help="Also recordings drawn for you before or scored by you."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Draw recordings to review, per agent and per category; says what was left out and why."""
    body: dict[str, Any] = {
        "period_hours": period_hours(period, "--period"),
        "per_agent": per_agent,
        "include_drawn": include_drawn,
    }
    sample: dict[str, Any] = api().post(
        "/qa/samples", body | ({} if seed is None else {"seed": seed})
    )
    if as_json:
        emit_json(sample)
        return
    show_listing(Listing(sample["recordings"]), SAMPLE_COLUMNS, empty="لا تسجيلات (no recordings)")
    period_said = f"{local_time(sample['since'])} – {local_time(sample['until'])}"
    repeated = " (a repeat of this seed: same period)" if sample.get("repeated") else ""
    say(
        f"{len(sample['recordings'])} recordings for {sample['reviewer']}; "
        f"seed {sample['seed']}{repeated}; period {period_said}"
    )
    left_out = {why: count for why, count in sample["excluded"].items() if count}
    if not left_out:
        say(visual("لم يُستبعد شيء (nothing left out)"))
    for why, count in left_out.items():
        say(visual(f"مستبعد (left out): {count} · {EXCLUDED.get(why, why)}"))


def ask_answer(criterion: dict[str, Any]) -> str:
    question = f"{criterion['label_ar']} · {criterion['code']} ({criterion['choices']})"
    return str(typer.prompt(visual(question))).strip()


def score_interactively(
    server_api: ApiClient, recording: int, comment: str | None, seen: int
) -> dict[str, Any]:
    """The scorecard, one criterion at a time; the server checks the answers, and one it
    refuses (its message names the criterion) is asked again. ``seen``: the latest version
    of the recording's score shown to the reviewer."""
    criteria: list[dict[str, Any]] = server_api.get("/qa/criteria")
    answers = {criterion["code"]: ask_answer(criterion) for criterion in criteria}
    if comment is None:
        comment = str(typer.prompt(visual("ملاحظات (comment)"), default="")) or None
    by_code = {criterion["code"]: criterion for criterion in criteria}
    while True:
        body = {"recording": recording, "scores": answers, "comment": comment, "version": seen}
        try:
            scored: dict[str, Any] = server_api.post("/qa/scores", body)
            return scored
        except ApiError as exc:
            code = exc.message.split(":", 1)[0].strip()
            if exc.status != 400 or code not in by_code:
                raise
            sys.stderr.write(f"{inert(exc.message)}\n")
            answers[code] = ask_answer(by_code[code])


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def show_score_context(context: dict[str, Any]) -> None:
    """Who and what is being scored, before any question: the agent heard (nobody on an
    IVR-only recording), the case, the kind of recording, how long, when; earlier scores."""
    agent = context.get("agent") or (
        visual("لا أحد: رسالة المتصل (nobody: IVR only)")
        if context.get("ivr_only")
        else visual("لا أحد (nobody)")
    )
    kinds = {
        "call": "مكالمة (call)",
        "message": "رسالة المتصل (caller's message)",
        "callback": "معاودة اتصال (callback)",
    }
    rows = (
        ("التسجيل (recording)", str(context["recording"])),
        ("الموظف (agent)", agent),
        ("المرجع (case)", context.get("case") or "—"),
        ("النوع (kind)", kinds.get(context["kind"], context["kind"])),
        ("المدة (duration)", duration(context.get("duration_seconds"))),
        ("التاريخ (recorded)", local_time(context.get("recorded_at"))),
    )
    for label, value in rows:
        # The whole line reordered at once: reordered apart, the colon leaves its label.
        say(visual(f"{label}: {value}"))
    for version in context["versions"]:
        say(
            visual(
                f"تقييم سابق (scored before): v{version['version']} "
                f"{version['reviewer']} {local_time(version['at'])} {version['total'] or 0:.1f}%"
            )
        )


@qa_app.command("score")
def qa_score(
    recording: RecordingArgument,
    score: Annotated[
        list[str] | None,
        typer.Option(
            "--score",
            metavar="CODE=VALUE",
            help="code=value for every criterion (scripts; repeat).",
        ),
    ] = None,
    comment: Annotated[str | None, typer.Option(help="The reviewer's comment.")] = None,
) -> None:
    """Score a recording on the QA scorecard (after its agent, case, kind, duration and date):
    asked criterion by criterion, or with --score. A rescore is a new version; refused if
    someone scored it since it was shown."""
    server_api = api()
    context: dict[str, Any] = server_api.get(f"/qa/recordings/{recording}")
    show_score_context(context)
    seen = int(context["latest_version"])
    if score:
        answers: dict[str, str] = {}
        for item in score:
            code, equals, answer = item.partition("=")
            if not equals:
                usage_error(f"--score {item!r}: write CODE=VALUE")
            answers[code.strip()] = answer
        body = {"recording": recording, "scores": answers, "comment": comment, "version": seen}
        scored = server_api.post("/qa/scores", body)
    else:
        scored = score_interactively(server_api, recording, comment, seen)
    say(
        f"recording {recording} scored: {scored.get('total') or 0:.1f}% "
        f"(version {scored.get('version')})"
    )


@qa_app.command("history")
def qa_history(recording: RecordingArgument, as_json: JsonOption = False) -> None:
    """A recording's scores, every version kept (the report counts the latest)."""
    context: dict[str, Any] = api().get(f"/qa/recordings/{recording}")
    if as_json:
        emit_json(context)
        return
    show_score_context(context)
    if not context["versions"]:
        say(visual("لم يُقيَّم بعد (not scored yet)"))


@qa_app.command("report")
def qa_report_command(
    period: Annotated[
        str | None, typer.Option(help="Reviews of this last period (24h, 7d, 2w); default all.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Per-agent and per-criterion averages of the QA scores, with the weighted total."""
    query = {} if period is None else {"period_hours": period_hours(period, "--period")}
    figures: dict[str, Any] = api().get("/qa/report", query)
    if as_json:
        emit_json(figures)
        return

    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    agents = (
        Column("agent", "الموظف"),
        Column("reviews", "المراجعات"),
        Column("total", "المجموع %", shown=lambda row: number(row["total"])),
    )
    show_listing(Listing(figures["per_agent"]), agents, empty="لا مراجعات (no reviews)")
    criteria = (
        Column("label_ar", "المعيار"),
        Column("weight", "الوزن", shown=lambda item: f"{item['weight']:g}"),
        Column("scale", "المقياس"),
        Column("mean", "المتوسط", shown=lambda item: number(item["mean"])),
        Column("percent", "%", shown=lambda item: number(item["percent"])),
    )
    show_listing(Listing(figures["per_criterion"]), criteria, empty="")
    say(f"reviews {figures['reviews']}, weighted total {number(figures['total'])}%")


@recordings_app.command("list")
def recordings_list(
    case: Annotated[
        str | None, typer.Option("--case", metavar="REF", help="Only this case's recordings.")
    ] = None,
    limit: LimitOption = 100,
    every: AllOption = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Recordings you may hear, newest first, with the ids `recordings play` takes (agents:
    their own cases'; the listing is audited)."""
    listing = fetch_listing("/recordings", "recordings", {"case": case}, limit=limit, every=every)
    show_listing(
        listing,
        RECORDING_COLUMNS,
        empty="لا توجد تسجيلات (no recordings)",
        as_json=as_json,
        as_csv=as_csv,
    )


def report_playback(server_api: ApiClient, recording: int, reason: str, error: str | None) -> None:
    """Tell the server how playing its copy went (it cannot hear it): played, or failed with
    the player's words. Only then is a listen on record as heard."""
    outcome = {"outcome": "played"} if error is None else {"outcome": "failed", "error": error}
    server_api.post(f"/recordings/{recording}/playback", {"reason": reason} | outcome)


@recordings_app.command("play")
def recordings_play(
    recording: RecordingArgument,
    reason: Annotated[str, typer.Option(help="Why you listen (kept in the audit log).")],
) -> None:
    """Listen to a recording (sent by the server after its SHA-256 check; the access is
    audited, and whether it played)."""
    from cli_player import INSTALL_HINT, find_player, play

    server_api = api()
    player = find_player()
    if player is None:
        fail(INSTALL_HINT)  # nothing fetched, nothing on record
    with tempfile.TemporaryDirectory(prefix="hotline-play-") as folder:
        query = {"purpose": "play", "reason": reason}
        copy = server_api.download(f"/recordings/{recording}/audio", query, Path(folder))
        played = play(player, copy.path)
    report_playback(server_api, recording, reason, played.error)
    if played.error is not None:
        fail(visual(f"لم يُشغَّل التسجيل (not played): {played.error}"))


@recordings_app.command("export")
def recordings_export(
    recording: RecordingArgument,
    to: Annotated[Path, typer.Option("--to", help="File or folder to write the copy to.")],
    reason: Annotated[str, typer.Option(help="Why it leaves the system (audit log).")],
) -> None:
    """Export a verified copy of a recording (the access is audited)."""
    query = {"purpose": "export", "reason": reason}
    copy = api().download(f"/recordings/{recording}/audio", query, to)
    say(f"recording {recording} exported to {copy.path}")


RETENTION_COLUMNS = (
    Column("recording_id", "التسجيل", whole=True),
    Column("case_reference", "المرجع", whole=True),
    Column("due", "الموعد", whole=True, shown=when("due")),
    Column("deleted", "حُذف", shown=lambda item: "نعم" if item.get("deleted") else "لا"),
    Column("error", "خطأ", text=True),
    Column("path", "الملف", path=True),
)


@recordings_app.command("retention")
def recordings_retention(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List only; delete nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete recordings past retention that no open case or QA review holds (audited)."""
    expired: list[dict[str, Any]] = api().post("/recordings/retention", {"dry_run": dry_run})
    if as_json:
        emit_json(expired)
    elif not expired:
        say(visual("لا توجد تسجيلات منتهية الاحتفاظ (nothing past retention)"))
    else:
        show_listing(Listing(expired), RETENTION_COLUMNS, empty="")
        verb = "would be deleted" if dry_run else "deleted"
        count = sum(1 for item in expired if item.get("deleted") or dry_run)
        say(f"{count} recordings {verb}")
    if any(item.get("error") for item in expired):
        raise typer.Exit(ExitCode.REFUSED)


@audit_app.command("verify")
def audit_verify(as_json: JsonOption = False) -> None:
    """Check the audit log against the server's signed checkpoints; exit code 1 if anything
    was edited, deleted or re-hashed (one line each, with the entries affected)."""
    chain: dict[str, Any] = api().get("/audit/verify")
    problems: list[dict[str, Any]] = chain.get("problems") or []
    if as_json:
        emit_json(chain)
    elif chain.get("intact"):
        say(visual(f"سجل التدقيق سليم (audit log intact): {audit_summary(chain)}"))
    else:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        say(visual(f"سجل التدقيق معطوب (audit log broken): {count}"))
        for problem in problems:
            say(f"  - {problem['message']}")
    if not chain.get("intact"):
        raise typer.Exit(ExitCode.REFUSED)


def audit_summary(chain: dict[str, Any]) -> str:
    """Entries, head, and what the signed checkpoints cover, for an intact log."""
    entries = f"{chain['entries']} entries, head {chain['head'][:16]}…"
    last = chain.get("last_checkpoint")
    if last is None:
        return f"{entries}; no signed checkpoint yet (the server signs one at its next entry)"
    why = "clean stop" if last["reason"] == "shutdown" else "interval"
    signed = (
        f"{chain['checkpoints']} signed checkpoints, the last (#{last['number']}, {why}, "
        f"{local_time(last['at'])}) up to entry {last['entry_seq']}"
    )
    unsigned = chain.get("unsigned") or 0
    tail = f"; {unsigned} entries since, signed at the next checkpoint" if unsigned else ""
    return f"{entries}; {signed}{tail}"


# The detail keys people read most, named in Arabic first (the others as they are stored).
DETAIL_LABELS = {
    "rows": "الصفوف (rows)",
    "reason": "السبب (reason)",
    "from": "من (from)",
    "to": "إلى (to)",
    "status": "الحالة (status)",
    "level": "المستوى (level)",
    "case": "الشكوى (case)",
    "mine": "الخاصة بي (mine)",
}


def detail_pairs(detail: Any) -> str:
    """An audit entry's detail as "key: value" pairs, not JSON."""
    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)

    def value(item: Any) -> str:
        return ", ".join(map(str, item)) if isinstance(item, list) else str(item)

    return "؛ ".join(f"{DETAIL_LABELS.get(k, k)}: {value(v)}" for k, v in detail.items())


AUDIT_COLUMNS = (
    Column("id", "رقم", whole=True),
    Column("at", "الوقت", whole=True, shown=when("at")),
    Column("actor", "بواسطة"),
    Column("action", "الإجراء"),
    Column(
        "object_type",
        "الهدف",
        shown=lambda event: f"{event.get('object_type') or ''} {event.get('object_id') or ''}",
    ),
    Column("allowed", "سُمح", shown=lambda event: "نعم" if event.get("allowed") else "لا"),
    Column("detail", "التفاصيل", text=True, shown=lambda event: detail_pairs(event.get("detail"))),
)


@audit_app.command("list")
def audit_list(
    since: Annotated[str | None, typer.Option(metavar="DATE", help="From this date (ISO).")] = None,
    object_type: Annotated[
        str | None,
        typer.Option(metavar="TYPE", help="case, recording, call, callback, agent, audit…"),
    ] = None,
    limit: LimitOption = 100,
    every: AllOption = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """The audit log, newest first (supervisors and admins)."""
    query = {"since": since, "object_type": object_type}
    listing = fetch_listing("/audit", "events", query, limit=limit, every=every)
    show_listing(
        listing, AUDIT_COLUMNS, empty="لا توجد قيود (no entries)", as_json=as_json, as_csv=as_csv
    )


@app.command("demo")
def demo(
    calls: Annotated[int, typer.Option(min=1, max=50, help="How many calls to place.")] = 5,
    folder: Annotated[Path, typer.Option("--dir", help="Folder for the demo site.")] = Path(
        "var/demo"
    ),
) -> None:
    """The whole path on this machine, no Asterisk: simulated calls end as drafts to review.

    Simulated calls with Arabic speech go through the real IVR, AMI listener and Whisper, and
    end as drafts waiting for an agent; then the demo signs you in as the demo site's admin and
    serves it (its HTTP API) until Ctrl-C, so people's commands work on it meanwhile."""
    from hotline.app.demo import run_demo

    def ready(result: DemoResult) -> None:
        show_demo_cases(result)
        issued = ApiClient(result.server).post(
            "/sessions", {"username": result.admin, "password": result.password}
        )
        client.save_session(client.SignedIn(result.server, issued["token"], result.admin))
        say(f"\nsigned in as {result.admin} at {result.server} (your session for hotline)")
        say(f"your demo password is in {result.config_path.parent / 'admin-password'}")
        say("while this runs (Ctrl-C stops it), try in another terminal:")
        reference = result.cases[0].reference if result.cases else None
        for command in (
            "review",
            "cases list",
            f"cases show {reference}" if reference else "",
            "calls list",
            "status",
            "whoami",
        ):
            if command:
                say(f"  .venv/bin/hotline {command}")

    run_demo(
        folder,
        calls,
        progress=lambda line: out().print(styled(("•", "dim"), f" {line}")),
        serve=ready,
    )
    say("demo stopped")


DEMO_COLUMNS = (
    Column("reference", "المرجع", whole=True),
    Column("caller_number", "المتصل", whole=True),
    Column("keypad_number", KEYPAD_LABEL, whole=True),
    Column("draft_state", "الحالة"),
    Column("draft_text", "المسودة", text=True),
)


def show_demo_cases(result: DemoResult) -> None:
    say(visual("الشكاوى المسجلة (the registered complaints)"))
    rows = [dataclasses.asdict(case) for case in result.cases]
    show_listing(Listing(rows), DEMO_COLUMNS, empty="لا شكاوى (no cases)")
    out().print(f"{len(result.cases)} calls from first ring to draft in {result.seconds:.0f} s")


# --- the entry point ------------------------------------------------------------------------------


def explain(exc: BaseException) -> tuple[str, str, int] | None:
    """A known failure as (label, one line, exit code); None for a bug (its traceback shows)."""
    if isinstance(exc, NotSignedIn):
        return "error", str(exc), ExitCode.REFUSED
    if isinstance(exc, ApiError):
        if exc.code == "signin_required":
            return "error", SESSION_ENDED, ExitCode.REFUSED
        if exc.code == "database_unavailable":
            return "error", exc.message, ExitCode.DATABASE
        if exc.code == "invalid":  # the server could not read what was typed (a date, say)
            return "error", exc.message, ExitCode.USAGE
        if exc.status == 429:
            wait = math.ceil(exc.retry_after or 1)
            return "refused", f"{exc.message} (try again in {wait} s)", ExitCode.REFUSED
        if exc.status >= 500:  # the server failed (its log says why), nothing was refused
            return "error", exc.message, ExitCode.REFUSED
        return "refused", exc.message, ExitCode.REFUSED
    if isinstance(exc, ClientError):
        return "error", str(exc), ExitCode.REFUSED
    if type(exc).__module__.split(".")[0] in ("builtins", "typer", "click", "cli_client"):
        return None
    # An operator command's failure (config, database, speech...): only then is the
    # application loaded to read it.
    from hotline.app.operator import known_failure

    known = known_failure(exc)
    if known is None:
        return None
    codes = {"refused": ExitCode.REFUSED, "config": ExitCode.CONFIG, "database": ExitCode.DATABASE}
    return known.label, known.message, codes[known.kind]


# --- starting fast -------------------------------------------------------------------------------
# Typer builds the click command of every command of the tree before it parses the arguments, and
# typer 0.29 checks each parameter's value through a pydantic TypeAdapter: with ~45 commands that
# is ~25 ms, and importing pydantic ~60 ms, of a command whose own work (one request) takes ~6 ms.
# So only the group or command named is built, and the parameter types this CLI uses (str, int
# with bounds, Path, a StrEnum, list[str], bool) are checked here with pydantic's own messages;
# any other type, or another typer without these internals, falls back to typer's way.

_PATH_DEFAULTS = {
    "exists": False,
    "file_okay": True,
    "dir_okay": True,
    "writable": False,
    "readable": True,
    "resolve_path": False,
    "allow_dash": False,
    "path_type": None,
}


def _plain_converter(annotation: Any, info: Any) -> Callable[[Any], Any] | None:
    """A converter for ``annotation`` that raises ValueError with pydantic's message, or None
    when typer's own coercion is needed."""
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return None
    if annotation is str:
        return str
    if annotation is bool:
        return _flag
    if annotation is int and not getattr(info, "clamp", False):
        low, high = info.min, info.max

        def integer(value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError("Input should be a valid integer")
            try:
                number = int(value)
            except ValueError:
                raise ValueError(
                    "Input should be a valid integer, unable to parse string as an integer"
                ) from None
            if low is not None and number < low:
                raise ValueError(f"Input should be greater than or equal to {low}")
            if high is not None and number > high:
                raise ValueError(f"Input should be less than or equal to {high}")
            return number

        return integer
    if annotation is Path:
        if any(getattr(info, k, v) != v for k, v in _PATH_DEFAULTS.items()):
            return None
        return Path
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        if not getattr(info, "case_sensitive", True):
            return None
        words = ", ".join(repr(member.value) for member in annotation)

        def member(value: Any) -> StrEnum:
            try:
                return annotation(value)
            except ValueError:
                raise ValueError(f"{value!r} is not one of {words}.") from None

        return member
    if annotation == list[str]:
        return lambda values: [str(value) for value in values]
    return None


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("1", "true", "t", "yes", "y", "on"):
        return True
    if word in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError("Input should be a valid boolean, unable to interpret input")


def _check_parameters_without_pydantic() -> None:
    try:
        from typer import core as typer_core
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:
        return
    parameter = getattr(typer_core, "_TyperParameter", None)
    if parameter is None or not hasattr(parameter, "get_runtime_param"):
        return
    typers_own = parameter.get_runtime_param

    @dataclasses.dataclass(frozen=True)
    class Plain(RuntimeParam):
        convert: Callable[[Any], Any] = str

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return self.convert(value)
            except ValueError as exc:
                raise BadParameter(str(exc), ctx=ctx, param=param) from None

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            descriptor = self.type_descriptor
            convert = None
            if descriptor.file_annotation is None:
                convert = _plain_converter(descriptor.annotation, descriptor.parameter_info)
            if convert is not None:
                self._runtime_param = Plain(
                    parameter_info=descriptor.parameter_info,
                    annotation=descriptor.annotation,
                    convert=convert,
                )
        return typers_own(self)

    parameter.get_runtime_param = get_runtime_param


def only_what_is_asked(argv: Sequence[str]) -> typer.Typer:
    """``app`` with only the command ``argv`` names (after the global options), down through its
    groups, so typer builds only that one command (``cases list`` builds none of the ten other
    ``cases`` commands); a group's whole tree for --help, completion or a word it does not know."""
    words = list(argv)
    while words and words[0].startswith("-"):
        option = words.pop(0)
        if option in ("-c", "--config") and words:
            words.pop(0)
    return pruned_to(app, words)


def pruned_to(tree: typer.Typer, words: list[str]) -> typer.Typer:
    """``tree`` holding only the group or command ``words[0]`` names, that group pruned to
    ``words[1:]`` in turn; ``tree`` itself when the word names nothing in it (or is an option)."""
    if not words:
        return tree
    groups = [group for group in tree.registered_groups if group.name == words[0]]
    commands = [command for command in tree.registered_commands if command.name == words[0]]
    if not groups and not commands:
        return tree
    pruned = copy.copy(tree)
    pruned.registered_commands = commands
    pruned.registered_groups = []
    for group in groups:
        narrowed = copy.copy(group)
        assert group.typer_instance is not None  # every group here is a Typer added by name
        narrowed.typer_instance = pruned_to(group.typer_instance, words[1:])
        pruned.registered_groups.append(narrowed)
    return pruned


def stdout_file() -> tuple[int, int] | None:
    """Which file standard output is (device, inode)."""
    try:
        found = os.fstat(1)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def reader_left(exc: SystemExit, stdout: object, stdout_was: tuple[int, int] | None) -> bool:
    """Whether ``exc`` is how a closed pipe ended the command: whoever read our output stopped
    early (``hotline cases show REF | head -1``), which is done, not a failure. Typer (as
    click) meets EPIPE by swapping stdout for a wrapper that swallows the rest, and Rich by
    pointing standard output at /dev/null; both then exit 1."""
    if exc.code != ExitCode.REFUSED:
        return False
    return sys.stdout is not stdout or stdout_file() != stdout_was


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: a known failure is one clear line and an exit code, not a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    _check_parameters_without_pydantic()
    stdout, stdout_was = sys.stdout, stdout_file()
    try:
        only_what_is_asked(args)(args=args, prog_name="hotline")
    except SystemExit as exc:
        if reader_left(exc, stdout, stdout_was):
            # Nothing left in a buffer may fail again at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            sys.exit(ExitCode.DONE)
        raise
    except Exception as exc:
        known = explain(exc)
        if known is None:
            raise
        label, message, code = known
        say_error(label, message)
        sys.exit(code)


if __name__ == "__main__":
    main()
