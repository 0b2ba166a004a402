"""The installed `hotline` command, run as a person or an operator would run it, against a real
site (tests/site.py): `hotline api` on the site's socket, people signed in with `hotline login`.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from casebook import cases
from casebook.access import Actor
from casebook.models import CaseStatus
from tests.conftest import BACKENDS
from tests.ivr_flows.fake_asterisk import Caller, place_call
from tests.readme_commands import commands
from tests.site import (
    AS_NOBODY,
    HOTLINE,
    NOBODY,
    PASSWORD,
    Person,
    Site,
    backend_url,
    clean_environment,
    one_time_password,
    running_site,
)

NOT_SIGNED_IN = "error: not signed in: run hotline login\n"
SESSION_ENDED = (
    "error: your session has ended (expired, signed out or disabled): run hotline login\n"
)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="runs commands as another OS user (setpriv), which needs root"
)


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """One running site per backend for this module, with an admin, a billing agent (sara)
    and a supervisor; tests make the cases they need."""
    url = backend_url(request)
    with running_site(url) as running:
        running.add_agent("sara", ["agent"], "billing", extension="201")
        running.add_agent("salem", ["supervisor"], "customer-care")
        yield running


@pytest.fixture
def fresh_site() -> Iterator[Site]:
    """A site of its own (SQLite) for tests that stop its server or bootstrap it."""
    with running_site() as running:
        yield running


# --- who you are: the session, never the environment ----------------------------------------------


def test_login_whoami_and_logout(site: Site) -> None:
    admin = site.login("admin")
    assert stat.S_IMODE(admin.session_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(admin.session_file.parent.stat().st_mode) == 0o700
    kept = json.loads(admin.session_file.read_text(encoding="utf-8"))
    assert (kept["server"], kept["username"]) == (site.address, "admin")
    me = json.loads(admin.ok("whoami", "--json").stdout)
    assert (me["username"], me["roles"]) == ("admin", ["admin"])
    assert "admin" in admin.ok("whoami").stdout
    signed_out = admin.ok("logout")
    assert "signed out (admin)" in signed_out.stdout
    assert not admin.session_file.exists()
    again = admin.run("whoami")
    assert (again.returncode, again.stderr) == (1, NOT_SIGNED_IN)


def test_a_session_ended_by_logout_is_refused_with_the_token_kept(site: Site) -> None:
    """The server ends the session, not just the client forgetting it: a copy of the token
    taken before logout is refused afterwards."""
    admin = site.login("admin")
    copy = admin.session_file.read_text(encoding="utf-8")
    admin.ok("logout")
    admin.session_file.write_text(copy, encoding="utf-8")
    refused = admin.run("cases", "list")
    assert (refused.returncode, refused.stderr) == (1, SESSION_ENDED)


def test_a_wrong_password_is_one_line_and_keeps_no_session(site: Site) -> None:
    person = site.person("sara")
    result = person.run(
        "login", "sara", "--server", site.address, "--password-stdin", stdin="not the password\n"
    )
    assert result.returncode == 1
    assert result.stderr.startswith("refused: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert not person.session_file.exists()
    unknown = person.run(
        "login", "nobody-here", "--server", site.address, "--password-stdin", stdin="x" * 12
    )
    # An unknown user and a wrong password read the same.
    assert unknown.stderr == result.stderr


def test_the_environment_changes_nothing_about_who_you_are_or_what_you_see(site: Site) -> None:
    billing = site.case("billing")
    elsewhere = site.case("customer-care")
    sara = site.people["sara"]
    plain = json.loads(sara.ok("cases", "list", "--json", "--limit", "1000").stdout)
    hostile = sara.run(
        "cases",
        "list",
        "--json",
        "--limit",
        "1000",
        env=sara.env(
            LOGNAME="root",
            USER="root",
            HOTLINE_ROLES__SEE_ALL_CASES='["agent"]',
            HOTLINE_CONFIG=str(site.config),
        ),
    )
    assert hostile.returncode == 0, hostile.stderr
    seen = {case["reference"] for case in json.loads(hostile.stdout)}
    assert seen == {case["reference"] for case in plain}
    assert billing in seen and elsewhere not in seen
    me = sara.run("whoami", "--json", env=sara.env(LOGNAME="root", USER="root"))
    assert json.loads(me.stdout)["username"] == "sara"
    # Nor can the agent read the other department's case by its reference.
    shown = sara.run("cases", "show", elsewhere)
    assert shown.returncode == 1 and shown.stderr.startswith("refused: ")


# Every command that is not an operator's, with arguments that would otherwise run it.
PEOPLE_COMMANDS: dict[str, list[str]] = {
    "whoami": [],
    "password": [],
    "agents add": ["eve", "--name", "Eve", "--role", "admin"],
    "agents list": [],
    "agents edit": ["sara", "--capacity", "3"],
    "agents disable": ["sara"],
    "agents enable": ["sara"],
    "agents reset-password": ["sara"],
    "review": [],
    "drafts list": [],
    "drafts confirm": ["100000017", "--category", "billing"],
    "drafts reject": ["100000017", "--reason", "x"],
    "drafts release": ["100000017"],
    "cases list": [],
    "cases search": ["فاتورة"],
    "cases show": ["100000017"],
    "cases resolve": ["100000017", "--summary", "done"],
    "cases close": ["100000017"],
    "cases escalate": ["100000017", "--reason", "slow"],
    "cases start": ["100000017"],
    "cases assign": ["100000017", "--to", "sara"],
    "cases note": ["100000017"],
    "cases reopen": ["100000017", "--reason", "back"],
    "followup log": ["100000017", "--method", "phone", "--result", "satisfied"],
    "callbacks list": [],
    "callbacks next": [],
    "callbacks dial": ["1"],
    "report": [],
    "calls list": [],
    "status": [],
    "qa verify": [],
    "qa sample": ["--period", "7d", "--per-agent", "1"],
    "qa score": ["1", "--score", "speed=2"],
    "qa history": ["1"],
    "qa report": [],
    "recordings list": [],
    "recordings play": ["1", "--reason", "QA"],
    "recordings export": ["1", "--to", "copy.wav", "--reason", "court"],
    "recordings retention": ["--dry-run"],
    "audit verify": [],
    "audit list": [],
}
OPERATOR_COMMANDS = {
    "login",
    "logout",
    "db upgrade",
    "db roles",
    "serve",
    "api",
    "listen",
    "agi",
    "worker",
    "scheduler",
    "transcribe",
    "prompts build",
    "asterisk config",
    "demo",
}


def test_every_command_is_a_peoples_or_an_operators() -> None:
    """So a new command is added to one list: people's are all refused without a session."""
    found = {path for path, _command in commands()}
    assert found == set(PEOPLE_COMMANDS) | OPERATOR_COMMANDS


@pytest.mark.parametrize("command", sorted(PEOPLE_COMMANDS))
def test_without_a_session_every_peoples_command_is_refused_in_one_line(
    command: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = clean_environment(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_STATE_HOME=str(home / "state"),
        LOGNAME="root",
        USER="root",
    )
    result = subprocess.run(
        [HOTLINE, *command.split(), *PEOPLE_COMMANDS[command]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=home,
        stdin=subprocess.DEVNULL,
    )
    assert (result.returncode, result.stderr, result.stdout) == (1, NOT_SIGNED_IN, "")


def test_an_admin_adds_an_agent_who_signs_in_with_the_one_time_password(site: Site) -> None:
    admin = site.people["admin"]
    added = admin.ok("agents", "add", "huda", "--name", "هدى", "--role", "agent")
    assert "added agent huda (agent)" in added.stdout
    one_time = one_time_password(added.stdout, "huda")
    assert added.stdout.count(one_time) == 1
    assert "privately" in added.stdout
    huda = site.person("huda")
    login = ["login", "huda", "--server", site.address, "--password-stdin"]
    differ = huda.run(*login, stdin=f"{one_time}\n{PASSWORD}\nsomething else\n")
    assert differ.returncode == 1 and "the two new passwords differ" in differ.stderr
    first = huda.run(*login, stdin=f"{one_time}\n{PASSWORD}\n{PASSWORD}\n")
    assert first.returncode == 0, first.stderr
    assert "a one-time password" in first.stdout and "signed in as huda" in first.stdout
    assert json.loads(huda.ok("whoami", "--json").stdout)["username"] == "huda"
    # Used once: the one-time password opens nothing now; the chosen one does.
    assert huda.run(*login, stdin=f"{one_time}\n").returncode == 1
    assert huda.run(*login, stdin=f"{PASSWORD}\n").returncode == 0


def test_a_one_time_password_at_the_prompt_asks_the_new_one_twice(site: Site) -> None:
    added = site.people["admin"].ok("agents", "add", "nour", "--name", "Nour", "--role", "qa")
    nour = site.person("nour")
    typed = f"{one_time_password(added.stdout, 'nour')}\n{PASSWORD}\n{PASSWORD}\n"
    # Not a terminal: click's prompts read the lines one by one, as they would be typed.
    result = nour.run("login", "nour", "--server", site.address, stdin=typed)
    assert result.returncode == 0, result.stderr
    assert "signed in as nour" in result.stdout


def test_you_change_your_own_password(site: Site) -> None:
    site.add_agent("rami", ["agent"], "billing")
    rami = site.people["rami"]
    new = "another long passphrase"
    changed = rami.run("password", "--password-stdin", stdin=f"{PASSWORD}\n{new}\n{new}\n")
    assert changed.returncode == 0, changed.stderr
    assert "password changed" in changed.stdout
    old = site.person("rami").run(
        "login", "rami", "--server", site.address, "--password-stdin", stdin=f"{PASSWORD}\n"
    )
    assert old.returncode == 1
    again = site.login("rami", new)
    wrong = again.run("password", "--password-stdin", stdin=f"{PASSWORD}\n{new}\n{new}\n")
    assert wrong.returncode == 1 and wrong.stderr.startswith("refused: ")
    assert "current password is wrong" in wrong.stderr


def test_a_disabled_agents_session_ends_and_an_admin_can_enable_them(site: Site) -> None:
    mona = site.add_agent("mona", ["agent"], "billing")
    admin = site.people["admin"]
    assert "disabled" in admin.ok("agents", "disable", "mona").stdout
    ended = mona.run("cases", "list")
    assert (ended.returncode, ended.stderr) == (1, SESSION_ENDED)
    listed = {
        row["username"]: row for row in json.loads(admin.ok("agents", "list", "--json").stdout)
    }
    assert listed["mona"]["active"] is False
    admin.ok("agents", "enable", "mona")
    reset = admin.ok("agents", "reset-password", "mona")
    assert "privately" in reset.stdout
    mona_again = site.person("mona")
    login = ["login", "mona", "--server", site.address, "--password-stdin"]
    first = mona_again.run(
        *login, stdin=f"{one_time_password(reset.stdout, 'mona')}\n{PASSWORD}\n{PASSWORD}\n"
    )
    assert first.returncode == 0, first.stderr


def test_only_admins_add_agents_and_the_refusal_is_audited(site: Site) -> None:
    sara = site.people["sara"]
    result = sara.run("agents", "add", "eve", "--name", "Eve", "--role", "admin")
    assert result.returncode == 1
    assert "sara may not add agents" in result.stderr
    events = json.loads(
        site.people["admin"].ok("audit", "list", "--object-type", "agent", "--json").stdout
    )
    refusals = [(e["actor"], e["action"], e["object_id"]) for e in events if e["allowed"] is False]
    assert ("sara", "agent.add", "eve") in refusals


# --- the first admin ------------------------------------------------------------------------------


def test_a_second_bootstrap_is_refused(fresh_site: Site) -> None:
    again = fresh_site.operator(
        *("agents", "add", "mallory", "--name", "M", "--role", "admin", "--bootstrap"),
        "--password-stdin",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert again.returncode == 1, again.stdout
    assert again.stderr.startswith("refused: ") and again.stderr.count("\n") == 1
    assert (
        fresh_site.person("mallory")
        .run("login", "mallory", "--server", fresh_site.address, "--password-stdin", stdin=PASSWORD)
        .returncode
        == 1
    )


@needs_root
def test_a_bootstrap_by_another_os_user_is_refused_by_uid() -> None:
    site = Site.create()
    try:
        site.upgrade()
        # Readable by anyone, so what refuses is the uid check, not a permission.
        site.folder.chmod(0o755)
        site.config.chmod(0o644)
        refused = site.operator(
            *("agents", "add", "mallory", "--name", "M", "--role", "admin", "--bootstrap"),
            "--password-stdin",
            stdin=f"{PASSWORD}\n{PASSWORD}\n",
            prefix=AS_NOBODY,
        )
        assert refused.returncode == 1, refused.stdout
        assert "--bootstrap is for the account that owns the site folder" in refused.stderr
        assert "(root), not nobody" in refused.stderr
        # The environment does not make anyone the owner.
        as_root = site.operator(
            *("agents", "add", "mallory", "--name", "M", "--role", "admin", "--bootstrap"),
            "--password-stdin",
            stdin=f"{PASSWORD}\n{PASSWORD}\n",
            prefix=AS_NOBODY,
            env=clean_environment(LOGNAME="root", USER="root", HOME="/root"),
        )
        assert as_root.returncode == 1 and "not nobody" in as_root.stderr
        with sqlite3.connect(site.folder / "hotline.db") as connection:
            assert connection.execute("SELECT count(*) FROM agent").fetchone() == (0,)
    finally:
        site.close()


@needs_root
def test_a_person_with_only_the_address_and_a_session_works_from_another_os_user() -> None:
    """The site folder (config, database, recordings) is root's and closed to others; the
    socket sits in a folder of its own whose group (nogroup here, `hotline-staff` on a real
    site) is the socket group, so its members may connect and read nothing else."""
    run_folder = Path(f"/tmp/hl-run-{os.getpid()}")
    group = grp.getgrgid(NOBODY).gr_name
    with running_site(socket_path=run_folder / "hotline.sock", socket_group=group) as site:
        site.folder.chmod(0o750)
        assert stat.S_IMODE(run_folder.stat().st_mode) == 0o750
        assert run_folder.stat().st_gid == NOBODY
        site.case("billing")
        site.add_agent("sara", ["agent"], "billing")
        sara = site.login("sara", uid=NOBODY)
        cannot = subprocess.run(
            [*AS_NOBODY, "cat", str(site.config)], capture_output=True, text=True, check=False
        )
        assert cannot.returncode != 0 and "Permission denied" in cannot.stderr
        listed = sara.run("cases", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [case["department"] for case in json.loads(listed.stdout)] == ["billing"]
        assert (sara.session_file.stat().st_uid, sara.session_file.stat().st_gid) == (
            NOBODY,
            NOBODY,
        )
        assert sara.ok("whoami").stdout.startswith("sara")


def test_the_bootstrap_uid_check_reads_the_folders_owner(tmp_path: Path) -> None:
    from hotline.app.operator import OperatorError, check_bootstrap_user

    assert check_bootstrap_user(tmp_path) == __import__("pwd").getpwuid(os.getuid()).pw_name
    with pytest.raises(OperatorError, match="owns the site folder"):
        check_bootstrap_user(tmp_path, uid=os.getuid() + 1)
    # Before the server's first start: the nearest folder that exists decides.
    assert check_bootstrap_user(tmp_path / "run" / "missing") == check_bootstrap_user(tmp_path)
    with pytest.raises(OperatorError, match="owns the site folder"):
        check_bootstrap_user(tmp_path / "missing", uid=os.getuid() + 1)


# --- what people see ------------------------------------------------------------------------------


def test_cases_list_json_is_the_servers_array(site: Site) -> None:
    reference = site.case("billing", draft_text="انقطاع الخدمة")
    rows = json.loads(site.people["sara"].ok("cases", "list", "--json").stdout)
    row = next(row for row in rows if row["reference"] == reference)
    assert row["draft_text"] == "انقطاع الخدمة"  # logical order for scripts
    assert row["status_label_ar"] and row["created_at"][-6] in "+-"  # the site's offset
    as_csv = site.people["sara"].ok("cases", "list", "--csv").stdout.splitlines()
    assert as_csv[0].startswith("reference,status,status_label_ar")


def test_cases_show_and_list_render_arabic_for_people(site: Site) -> None:
    reference = site.case("billing", draft_text="انقطاع الخدمة")
    shown = site.people["sara"].ok("cases", "show", reference)
    assert reference in shown.stdout and "انقطاع الخدمة" in shown.stdout
    listed = site.people["sara"].ok("cases", "list", "--limit", "1000")
    assert reference in listed.stdout


def confirmed_case(site: Site, text: str) -> str:
    """A billing complaint confirmed (its words indexed), as the review would."""
    reference = site.case("billing", status=CaseStatus.DRAFT, draft_text=text)
    with site.database() as (db, settings):
        db.run(
            lambda s: cases.confirm_draft(
                s,
                settings,
                Actor.system("test"),
                reference,
                text=text,
                category="network",
                department="billing",
            )
        )
    return reference


def test_cases_search_finds_words_and_says_how_many_more(site: Site) -> None:
    word = f"ولاية{uuid.uuid4().hex[:6]}"  # no other test's case holds it
    made = [confirmed_case(site, f"الفاتورةُ مرتفعـة جداً في {word}") for _ in range(3)]
    sara = site.people["sara"]
    shown = sara.ok("cases", "search", f"فاتوره {word}", "--limit", "2")
    assert made[2] in shown.stdout and made[0] not in shown.stdout
    assert f"1 more: --after {made[1]}" in shown.stdout
    as_json = sara.ok(
        "cases", "search", word, "--caller", "+218 91 234 5678", "--limit", "2", "--json"
    )
    assert [row["reference"] for row in json.loads(as_json.stdout)] == made[:0:-1]
    assert "1 more" in as_json.stderr  # the data stays on standard output
    rest = sara.ok("cases", "search", word, "--after", made[1], "--json")
    assert [row["reference"] for row in json.loads(rest.stdout)] == [made[0]]
    every = sara.ok("cases", "search", word, "--all", "--limit", "1", "--csv")
    assert len(every.stdout.splitlines()) == 4 and "more" not in every.stderr


def test_the_keyed_account_number_is_shown_and_searched(site: Site) -> None:
    account = f"09{uuid.uuid4().int % 10**10:010d}"  # no other test's case has it
    reference, _ = site.drafted_call("رقمي 0912", uniqueid=uuid.uuid4().hex, keypad_number=account)
    salem = site.people["salem"]
    shown = salem.ok("cases", "show", reference)
    assert f"رقم الحساب أو الخط: {account}" in shown.stdout  # piped: logical order
    as_json = json.loads(salem.ok("cases", "show", reference, "--json").stdout)
    assert as_json["keypad_number"] == account
    grouped = f"{account[:4]}-{account[4:7]} {account[7:]}"
    found = salem.ok("cases", "search", "--account", grouped, "--json")
    assert [row["reference"] for row in json.loads(found.stdout)] == [reference]
    refused = salem.run("cases", "search", "--account", "09-x")
    assert refused.returncode != 0 and "not an account number" in refused.stderr
    assert refused.stderr.count("\n") == 1


def test_cases_list_says_how_many_more_when_cut(site: Site) -> None:
    site.case("billing")
    site.case("billing")
    cut = site.people["sara"].ok("cases", "list", "--limit", "1")
    assert " more: --after " in cut.stdout


def test_cases_search_refuses_a_backwards_range_in_one_line(site: Site) -> None:
    refused = site.people["sara"].run(
        "cases", "search", "--since", "2026-12-01", "--until", "2026-11-01"
    )
    assert refused.returncode == 2  # a usage mistake (README's exit codes)
    assert refused.stderr.count("\n") == 1 and "is after until" in refused.stderr


def test_report_json_has_the_satisfaction_figures(site: Site) -> None:
    figures = json.loads(site.people["admin"].ok("report", "--json").stdout)
    assert {"csat_strict", "csat_lenient", "ces", "cases_by_status_label_ar"} <= figures.keys()
    assert "CSAT strict" in site.people["admin"].ok("report").stdout


def test_agents_list_keeps_arabic_in_logical_order_for_scripts(site: Site) -> None:
    rows = json.loads(site.people["admin"].ok("agents", "list", "--json").stdout)
    assert ("admin", "مدير") in [(r["username"], r["display_name"]) for r in rows]


def test_a_wrong_reference_is_a_clear_refusal(site: Site) -> None:
    result = site.people["sara"].run("cases", "show", "123456789")
    assert result.returncode == 1
    assert "check digit" in result.stderr and "Traceback" not in result.stderr


def test_a_case_is_resolved_followed_up_and_closed_through_the_server(site: Site) -> None:
    reference = site.case("billing", status=CaseStatus.IN_PROGRESS)
    sara = site.people["sara"]
    assert (
        f"case {reference}: resolved"
        in sara.ok("cases", "resolve", reference, "--summary", "أعيد الخط").stdout
    )
    logged = sara.ok(
        "followup", "log", reference, "--method", "phone", "--result", "satisfied", "--effort", "5"
    )
    assert "logged: satisfied" in logged.stdout
    bad = sara.run("followup", "log", reference, "--method", "phone", "--result", "happy")
    assert bad.returncode == 2 and "'satisfied', 'not-satisfied'" in bad.stderr
    assert f"case {reference}: closed" in sara.ok("cases", "close", reference).stdout
    shown = json.loads(sara.ok("cases", "show", reference, "--json").stdout)
    assert [item["result"] for item in shown["followups"]] == ["satisfied"]


def test_bad_input_is_refused_before_the_server_is_asked(site: Site) -> None:
    admin = site.people["admin"]
    for args, said in (
        (["qa", "sample", "--period", "7x", "--per-agent", "1"], "--period must be"),
        (["agents", "add", "x", "--name", "X", "--role", "agent", "--shift-start", "9h"], "HH:MM"),
    ):
        result = admin.run(*args)
        assert result.returncode == 2 and said in result.stderr, result.stderr


def test_the_client_offers_the_servers_words() -> None:
    """--status, --method, --result and --shift-day words are the casebook's (the server
    checks them again)."""
    import cli
    from casebook.followups import RESULT_WORDS
    from casebook.models import CaseStatus, ContactMethod, Priority
    from casebook.settings import WEEKDAYS

    assert [s.value for s in cli.CaseStatus] == [s.value for s in CaseStatus]
    assert [m.value for m in cli.ContactMethod] == [m.value for m in ContactMethod]
    assert list(cli.PRIORITIES) == [p.value for p in Priority]
    assert [r.value for r in cli.FollowUpResult] == list(RESULT_WORDS)
    assert cli.WEEKDAYS == WEEKDAYS


# --- when something is wrong ----------------------------------------------------------------------


def test_no_server_is_one_line_naming_its_address(fresh_site: Site) -> None:
    admin = fresh_site.people["admin"]
    fresh_site.stop()
    result = admin.run("cases", "list")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: the hotline server at {fresh_site.address} is not answering: "
        "is `hotline serve` running?\n"
    )


def test_a_database_locked_past_the_retry_window_is_one_line_and_exit_3(
    fresh_site: Site,
) -> None:
    admin = fresh_site.people["admin"]
    holder = sqlite3.connect(fresh_site.folder / "hotline.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process writing, past retry_seconds (2 s)
        result = admin.run("cases", "list")
    finally:
        holder.close()
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "database" in result.stderr
    assert admin.run("cases", "list").returncode == 0


def test_too_many_wrong_passwords_say_when_to_try_again(fresh_site: Site) -> None:
    fresh_site.stop()
    fresh_site.write_config(signin={"slow_after_failures": 1, "slow_base_seconds": 30.0})
    fresh_site.start()
    person = fresh_site.person("admin")
    login = ["login", "admin", "--server", fresh_site.address, "--password-stdin"]
    person.run(*login, stdin="wrong password 1\n")
    person.run(*login, stdin="wrong password 2\n")
    slowed = person.run(*login, stdin="wrong password 3\n")
    assert slowed.returncode == 1
    assert "try again in" in slowed.stderr and slowed.stderr.count("\n") == 1


def test_a_config_typo_is_one_line_and_exit_4_for_operator_commands(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("databse:\n  url: sqlite:///x.db\n", encoding="utf-8")
    result = subprocess.run(
        [HOTLINE, "-c", str(tmp_path / "config.yaml"), "db", "upgrade"],
        capture_output=True,
        text=True,
        env=clean_environment(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 4
    assert result.stderr.strip().count("\n") == 0
    assert "unknown key 'databse'" in result.stderr
    assert "Traceback" not in result.stderr


# --- starting fast --------------------------------------------------------------------------------

HEAVY = ("sqlmodel", "sqlalchemy", "casebook", "pydantic", "numpy", "rich", "hotline")


def loaded_modules(code: str, env: dict[str, str] | None = None) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)), file=sys.stderr)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env or clean_environment(),
        timeout=60,
        check=False,
    )
    return {name.split(".")[0] for name in result.stderr.split("\n")[-2].split()}


def test_import_cli_loads_nothing_heavy() -> None:
    assert loaded_modules("import cli") & set(HEAVY) == set()


def test_cases_list_json_loads_nothing_heavy(site: Site) -> None:
    sara = site.people["sara"]
    code = (
        "import cli\n"
        "try:\n"
        "    cli.main(['cases', 'list', '--json'])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
    )
    loaded = loaded_modules(code, sara.env())
    assert loaded & set(HEAVY) == set()
    assert "http" in loaded  # it did ask the server


# --- operator commands ----------------------------------------------------------------------------


def test_db_upgrade_is_idempotent(fresh_site: Site) -> None:
    for _ in range(2):
        result = fresh_site.operator("db", "upgrade")
        assert result.returncode == 0, result.stderr
        assert "schema up to date" in result.stdout


def test_asterisk_config_prints_the_dialplan_and_manager_user(site: Site) -> None:
    result = site.operator("asterisk", "config")
    assert result.returncode == 0, result.stderr
    assert "exten => 15654,1," in result.stdout
    assert "AGI(agi://127.0.0.1:4573/hotline" in result.stdout
    assert "channelvars = HOTLINE_CASE,MIXMONITOR_FILENAME,HOTLINE_CHOICES,HOTLINE_OUTCOME" in (
        result.stdout
    )
    # The agent queue's members come from the agents table (sara has extension 201).
    queues = result.stdout.split(";;; ---- queues.conf ----")[1].split(";;; ----")[0]
    members = [line for line in queues.splitlines() if line.startswith("member =>")]
    assert "member => Local/201@hotline-agents,0,201,PJSIP/201" in members


@pytest.mark.skipif(not shutil.which("espeak-ng") or not shutil.which("sox"), reason="no espeak-ng")
def test_prompts_build_renders_8khz_arabic_prompts_and_digits(fresh_site: Site) -> None:
    result = fresh_site.operator("prompts", "build", "--voice", "espeak-ng")
    assert result.returncode == 0, result.stderr
    digit = fresh_site.folder / "var/sounds/ar/digits/7.wav"
    with wave.open(str(digit)) as audio:
        assert (audio.getframerate(), audio.getnchannels()) == (8000, 1)
    assert "0 rendered" in fresh_site.operator("prompts", "build", "--voice", "espeak-ng").stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_agi_serves_a_call_and_stops_cleanly_on_sigterm(fresh_site: Site) -> None:
    port = free_port()
    env = clean_environment(HOTLINE_AGI__PORT=str(port))
    server = subprocess.Popen(
        [HOTLINE, "-c", str(fresh_site.config), "agi"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60  # a safety net: start-up is quick
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.1)
        place_call(("127.0.0.1", port), Caller(keys=["1", "1"]))
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    assert server.returncode == 0, errors
    listed = json.loads(fresh_site.people["admin"].ok("cases", "list", "--json").stdout)
    assert [case["caller_number"] for case in listed] == ["0912345678"]


def test_the_scheduler_process_assigns_due_callbacks_and_stops_on_sigterm(
    fresh_site: Site,
) -> None:
    fresh_site.add_agent("sara", ["agent"], "billing", extension="201")
    env = clean_environment(
        HOTLINE_CALLBACKS__ASSIGN_INTERVAL_SECONDS="0.2",
        # Whatever the day and hour the test runs at: everyone works, customers may be called.
        HOTLINE_CALLBACKS__CALL_WINDOW_START="00:00",
        HOTLINE_CALLBACKS__CALL_WINDOW_END="23:59:59",
        HOTLINE_BUSINESS_HOURS__DAYS="[mon, tue, wed, thu, fri, sat, sun]",
        HOTLINE_BUSINESS_HOURS__START="00:00",
        HOTLINE_BUSINESS_HOURS__END="23:59:59",
    )
    database = fresh_site.folder / "hotline.db"
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO callback (phone_number, reason, department, language, due_from,"
            " overdue_at, attempts, status, created_at) VALUES ('0910000001', 'abandoned',"
            " 'billing', 'ar', '2020-01-01 00:00:00', '2999-01-01 00:00:00', 0, 'pending',"
            " '2020-01-01 00:00:00')"
        )
    server = subprocess.Popen(
        [HOTLINE, "-c", str(fresh_site.config), "scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60  # a safety net: the first run is immediate
        status = "pending"
        while status == "pending" and time.monotonic() < deadline:
            time.sleep(0.2)
            with sqlite3.connect(database) as connection:
                status = connection.execute("SELECT status FROM callback").fetchone()[0]
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    assert server.returncode == 0
    mine = json.loads(fresh_site.people["sara"].ok("callbacks", "list", "--mine", "--json").stdout)
    assert [(c["status"], c["phone_number"]) for c in mine] == [("assigned", "0910000001")]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_status_tells_a_clean_stop_from_a_silent_instance(
    fresh_site: Site, stop: signal.Signals
) -> None:
    process = subprocess.Popen(
        [HOTLINE, "-c", str(fresh_site.config), "scheduler"],
        env=clean_environment(),
        stderr=subprocess.DEVNULL,
    )
    database = fresh_site.folder / "hotline.db"

    def beats() -> int:
        with contextlib.closing(sqlite3.connect(database)) as connection:
            return int(
                connection.execute(
                    "SELECT count(*) FROM heartbeat WHERE component = 'scheduler'"
                ).fetchone()[0]
            )

    try:
        deadline = time.monotonic() + 60
        while beats() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert beats() == 1
    finally:
        process.send_signal(stop)
        process.wait(timeout=60)
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        # Long enough ago that a running instance would have reported several times since.
        connection.execute(
            "UPDATE heartbeat SET seen_at = '2026-01-01 00:00:00.000000'"
            " WHERE component = 'scheduler'"
        )
    admin: Person = fresh_site.people["admin"]
    result = admin.run("status", env=admin.env(COLUMNS="200"))
    assert result.returncode == 0, result.stderr
    line = next(row for row in result.stdout.splitlines() if "scheduler" in row)
    if stop == signal.SIGTERM:
        assert "stopped at" in line and "silent" not in line
    else:
        assert "silent" in line and "stopped" not in line


# --- over HTTPS, from another machine -------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key)),
            *("-out", str(cert), "-days", "1", "-subj", "/CN=hotline.test"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl makes the test certificate")
def test_a_person_signs_in_over_https_trusting_the_sites_ca(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    tls = {"tcp_host": "127.0.0.1", "tcp_port": port, "tls_cert": str(cert), "tls_key": str(key)}
    with running_site(sections={"server": tls}) as site:
        site.case("billing")
        person = site.person("admin")
        address = f"https://127.0.0.1:{port}"
        login = ["login", "admin", "--server", address, "--password-stdin"]
        untrusted = person.run(*login, stdin=f"{PASSWORD}\n")
        assert untrusted.returncode == 1
        assert "certificate is not trusted" in untrusted.stderr and "--cafile" in untrusted.stderr
        trusted = person.run(*login, "--cafile", str(cert), stdin=f"{PASSWORD}\n")
        assert trusted.returncode == 0, trusted.stderr
        kept = json.loads(person.session_file.read_text(encoding="utf-8"))
        assert (kept["server"], kept["cafile"]) == (address, str(cert))
        listed = json.loads(person.ok("cases", "list", "--json").stdout)
        assert [case["department"] for case in listed] == ["billing"]


# --- parameters, checked without pydantic ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["cases", "list", "--limit", "abc"], "unable to parse string as an integer"),
        (["cases", "list", "--limit", "0"], "Input should be greater than or equal to 1"),
        (["cases", "list", "--limit", "10001"], "Input should be less than or equal to 10000"),
        (["cases", "list", "--status", "nope"], "'nope' is not one of 'draft', 'open'"),
        (["followup", "log", "100000017", "--method", "fax", "--result", "x"], "'fax' is not"),
        (["qa", "score", "x"], "unable to parse string as an integer"),
        (["cases", "lst"], "No such command"),
    ],
)
def test_a_bad_parameter_is_refused_before_anything_else(args: list[str], said: str) -> None:
    result = subprocess.run(
        [HOTLINE, *args],
        capture_output=True,
        text=True,
        env=clean_environment(COLUMNS="200"),
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert said in result.stderr


def test_only_the_command_asked_for_is_built_and_the_whole_tree_otherwise() -> None:
    import cli

    pruned = cli.only_what_is_asked(["--config=x.yaml", "review"])
    assert [command.name for command in pruned.registered_commands] == ["review"]
    assert pruned.registered_groups == []
    for whole in (["--help"], [], ["nosuch"], ["-c", "x.yaml"]):
        assert cli.only_what_is_asked(whole) is cli.app

    def cases_group(argv: list[str]) -> typer.Typer:
        pruned = cli.only_what_is_asked(argv)
        assert pruned.registered_commands == []
        (group,) = pruned.registered_groups
        assert group.name == "cases" and group.typer_instance is not None
        return group.typer_instance

    listing = cases_group(["-c", "x.yaml", "cases", "list", "--json"])
    assert [command.name for command in listing.registered_commands] == ["list"]
    cases_tree = cases_group(["cases"])
    cases_info = next(group for group in cli.app.registered_groups if group.name == "cases")
    assert cases_tree is cases_info.typer_instance
    for group_words in (["cases", "--help"], ["cases", "nosuch"]):
        assert cases_group(group_words) is cases_tree
    # The whole tree is never changed by pruning a copy of it.
    assert len(cases_tree.registered_commands) > 5


def test_a_pruned_command_runs_as_the_whole_tree_runs_it() -> None:
    """The pruned tree is what main() runs: a command deep in a group, its help and its errors
    are the same as the whole tree's."""
    import cli

    runner = CliRunner()
    for argv in (["cases", "list", "--help"], ["cases", "list", "--status", "nosuch"]):
        whole = runner.invoke(cli.app, argv)
        pruned = runner.invoke(cli.only_what_is_asked(argv), argv)
        assert (pruned.exit_code, pruned.output) == (whole.exit_code, whole.output), argv


@pytest.mark.parametrize(
    ("status", "code", "retry", "expected"),
    [
        (401, "signin_required", None, ("error", SESSION_ENDED.removeprefix("error: ")[:-1], 1)),
        (401, "wrong_credentials", None, ("refused", "wrong", 1)),
        (403, "denied", None, ("refused", "wrong", 1)),
        (429, "slowed", 2.2, ("refused", "wrong (try again in 3 s)", 1)),
        (503, "database_unavailable", None, ("error", "wrong", 3)),
        (503, "pbx_unavailable", None, ("error", "wrong", 1)),
        (500, "internal", None, ("error", "wrong", 1)),
    ],
)
def test_each_answer_of_the_server_is_one_line_and_an_exit_code(
    status: int, code: str, retry: float | None, expected: tuple[str, str, int]
) -> None:
    import cli
    from cli_client import ApiError

    assert cli.explain(ApiError(status, code, "wrong", retry)) == expected
