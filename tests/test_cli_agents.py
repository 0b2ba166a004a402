"""Issue 18, items 5 and 8 through the `hotline` command: agents edited, their shifts and capacity
shown; the exit codes the README documents; periods and dates as people type them; a closed
pipe; a command run where there is no site; ./dev's progress while it installs."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKENDS
from tests.site import HOTLINE, Site, backend_url, clean_environment, running_site

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    url = backend_url(request)
    with running_site(url) as running:
        running.add_agent("sara", ["agent"], "billing", extension="201")
        yield running


# --- agents ---------------------------------------------------------------------------------------


def listed(site: Site) -> dict[str, dict[str, object]]:
    rows = json.loads(site.people["admin"].ok("agents", "list", "--json").stdout)
    return {row["username"]: row for row in rows}


def test_an_admin_edits_an_agent_and_list_and_whoami_show_shift_and_capacity(site: Site) -> None:
    admin, sara = site.people["admin"], site.people["sara"]
    before = listed(site)["sara"]
    assert (before["shift_days"], before["capacity"]) == ([], None)
    assert before["effective_capacity"] == 10  # callbacks.agent_capacity
    edited = admin.ok(
        *("agents", "edit", "sara", "--capacity", "3", "--extension", "209"),
        *("--shift-day", "sun", "--shift-day", "mon", "--shift-day", "tue", "--shift-day", "thu"),
        *("--shift-start", "08:00", "--shift-end", "14:30"),
    )
    assert "agent sara changed:" in edited.stdout
    assert "capacity: — → 3" in edited.stdout and "extension: 201 → 209" in edited.stdout
    row = listed(site)["sara"]
    assert (row["shift_days"], row["shift_start"], row["shift_end"]) == (
        ["mon", "sun", "thu", "tue"],
        "08:00",
        "14:30",
    )
    assert (row["capacity"], row["effective_capacity"], row["extension"]) == (3, 3, "209")
    table = admin.ok("agents", "list").stdout
    line = next(line for line in table.splitlines() if "sara" in line)
    assert "sun-tue,thu 08:00-14:30" in line and line.split()[-1] == "3"  # her own capacity
    admin_line = next(line for line in table.splitlines() if line.split()[:1] == ["admin"])
    assert "business hours" in admin_line and "10*" in admin_line
    me = json.loads(sara.ok("whoami", "--json").stdout)
    assert (me["username"], me["capacity"], me["shift_start"], me["extension"]) == (
        "sara",
        3,
        "08:00",
        "209",
    )
    shown = sara.ok("whoami").stdout
    assert "shift: sun-tue,thu 08:00-14:30" in shown and "capacity: 3" in shown
    # Cleared: back to the site's business hours and capacity.
    admin.ok("agents", "edit", "sara", "--clear", "shift", "--clear", "capacity")
    shown = sara.ok("whoami").stdout
    assert "shift: business hours" in shown and "capacity: 10 (site default)" in shown
    again = admin.ok("agents", "edit", "sara", "--extension", "209")
    assert "nothing changed" in again.stdout
    events = json.loads(admin.ok("audit", "list", "--object-type", "agent", "--json").stdout)
    edits = [e for e in events if e["action"] == "agent.edit" and e["object_id"] == "sara"]
    assert len(edits) == 2 and all(e["actor"] == "admin" for e in edits)


def test_an_edit_is_refused_for_non_admins_and_usage_mistakes_are_exit_2(site: Site) -> None:
    admin, sara = site.people["admin"], site.people["sara"]
    refused = sara.run("agents", "edit", "sara", "--capacity", "50")
    assert refused.returncode == 1 and "sara may not edit agents" in refused.stderr
    for args, said in (
        ((), "nothing to change"),
        (("--clear", "shift", "--shift-day", "sun"), "--clear and a new value"),
        (("--clear", "roles"), "'roles' is not one of"),
        (("--capacity", "0"), "greater than or equal to 1"),
        (("--shift-start", "8"), "HH:MM"),
    ):
        result = admin.run("agents", "edit", "sara", *args)
        assert (result.returncode, said in result.stderr) == (2, True), result.stderr
    rule = admin.run("agents", "edit", "sara", "--shift-start", "09:00")
    assert rule.returncode == 1 and "both the shift start and end" in rule.stderr
    last = admin.run("agents", "edit", "admin", "--role", "supervisor")
    assert last.returncode == 1 and "last active admin" in last.stderr


def test_disabling_says_whose_sessions_ended(site: Site) -> None:
    site.add_agent("mona", ["agent"], "billing")
    disabled = site.people["admin"].ok("agents", "disable", "mona")
    assert disabled.stdout == "agent mona disabled: cannot sign in; 1 session(s) ended now\n"
    assert listed(site)["mona"]["active"] is False


# --- exit codes and what people type ------------------------------------------------------------


def test_every_usage_mistake_is_exit_2_and_a_refusal_exit_1(site: Site) -> None:
    reference = site.case("billing")
    sara = site.people["sara"]
    for args in (
        ("--method", "fax", "--result", "satisfied"),
        ("--method", "phone", "--result", "happy"),
    ):
        mistake = sara.run("followup", "log", reference, *args)
        assert mistake.returncode == 2, mistake.stderr
    refused = sara.run("followup", "log", reference, "--method", "phone", "--result", "satisfied")
    assert refused.returncode == 1 and refused.stderr.startswith("refused: "), refused.stderr


def test_a_period_that_ends_before_it_starts_is_an_error_not_zeros(site: Site) -> None:
    admin = site.people["admin"]
    backwards = admin.run("report", "--since", "2026-11-05", "--until", "2026-11-01")
    assert backwards.returncode == 2
    assert "since (2026-11-05) is after until (2026-11-01)" in backwards.stderr
    assert backwards.stdout == "" and backwards.stderr.count("\n") == 1
    malformed = admin.run("report", "--since", "yesterday")
    assert malformed.returncode == 2 and "since must be an ISO date" in malformed.stderr


def test_dates_are_read_in_arabic_indic_digits_as_references_are(site: Site) -> None:
    admin = site.people["admin"]
    western = json.loads(
        admin.ok("report", "--since", "2026-11-01", "--until", "2026-11-30", "--json").stdout
    )
    arabic = json.loads(
        admin.ok("report", "--since", "٢٠٢٦-١١-٠١", "--until", "۲۰۲۶-۱۱-۳۰", "--json").stdout
    )
    assert (arabic["since"], arabic["until"]) == (western["since"], western["until"])
    backwards = admin.run("report", "--since", "٢٠٢٦-١١-٠٥", "--until", "٢٠٢٦-١١-٠١")
    assert backwards.returncode == 2


@pytest.mark.parametrize(
    "command",
    [["agents", "list"], ["agents", "list", "--json"], ["whoami"], ["--help"]],
    ids=["a table", "json", "lines", "help"],
)
def test_a_reader_that_stops_early_ends_the_command_quietly(site: Site, command: list[str]) -> None:
    """`hotline cases show REF | head -1`: the pipe closes before everything is written (a
    table is Rich's, the lines print's, the help typer's)."""
    admin = site.people["admin"]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line
    try:
        result = subprocess.run(
            [HOTLINE, *command],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=admin.env(),
            cwd=admin.home,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")


# --- no site here ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["serve"],
        ["db", "roles"],
        ["asterisk", "config"],
        ["agents", "add", "root", "--name", "R", "--role", "admin", "--bootstrap"],
    ],
)
def test_an_operator_command_where_no_site_is_configured_says_so_and_creates_nothing(
    command: list[str], tmp_path: Path
) -> None:
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    result = subprocess.run(
        [HOTLINE, *command],
        capture_output=True,
        text=True,
        env=clean_environment(HOME=str(tmp_path)),
        cwd=empty,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert result.returncode == 4, result.stderr
    assert result.stderr == (
        f"config error: no hotline site here: {empty} has no config.yaml; run this in the "
        "site's folder, or name its config with --config PATH or HOTLINE_CONFIG=PATH "
        "(nothing was created)\n"
    )
    assert list(empty.iterdir()) == []


# --- ./dev ----------------------------------------------------------------------------------------

FAKE_PIP = """#!/bin/sh
# A venv's python whose pip says what a real one says, unless told to be quiet.
for word in "$@"; do [ "$word" = -q ] && exit 0; done
echo "Collecting faster-whisper"
echo "  Downloading faster_whisper-1.1.0-py3-none-any.whl (1.1 MB)"
echo "Requirement already satisfied: numpy in ./.venv/lib"
echo "Installing collected packages: faster-whisper, hotline"
echo "Successfully installed faster-whisper-1.1.0 hotline-0.1"
"""


def test_dev_says_what_it_installs_and_keeps_a_log_readable(tmp_path: Path) -> None:
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_folder = tmp_path / ".venv" / "bin"
    bin_folder.mkdir(parents=True)
    tools = tmp_path / "tools"
    tools.mkdir()
    for name, text in [(bin_folder / "python", FAKE_PIP)] + [
        (tools / tool, "#!/bin/sh\n") for tool in ("espeak-ng", "sox", "tmux")
    ]:
        name.write_text(text, encoding="utf-8")
        name.chmod(name.stat().st_mode | stat.S_IXUSR)
    result = subprocess.run(
        [str(tmp_path / "dev"), "setup"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "PYTHON": sys.executable},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "installing the dependencies, one line per package" in result.stderr
    # Not a terminal (CI, a log): the package lines, no download noise.
    assert result.stdout.splitlines() == [
        "Collecting faster-whisper",
        "Installing collected packages: faster-whisper, hotline",
        "Successfully installed faster-whisper-1.1.0 hotline-0.1",
    ]
