"""The installed `hotline` command, run as a person or a script would run it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from tests.ivr_flows.fake_asterisk import Caller, place_call

HOTLINE = str(Path(sys.executable).with_name("hotline"))


def hotline(tmp_path: Path, *args: str, user: str = "root") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LOGNAME": user,
        "USER": user,
        "HOTLINE_CONFIG": str(tmp_path / "config.yaml"),
        "COLUMNS": "100",
    }
    return subprocess.run(
        [HOTLINE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text(
        "database:\n  url: sqlite:///hotline.db\n", encoding="utf-8"
    )
    first = hotline(tmp_path, "agents", "add", "root", "--name", "مدير", "--role", "admin")
    assert first.returncode == 0, first.stderr
    second = hotline(
        tmp_path,
        "agents",
        "add",
        "sara",
        "--name",
        "سارة",
        "--role",
        "agent",
        "--department",
        "billing",
        "--extension",
        "201",
    )
    assert second.returncode == 0, second.stderr
    return tmp_path


def test_db_upgrade_is_idempotent(site: Path) -> None:
    for _ in range(2):
        result = hotline(site, "db", "upgrade")
        assert result.returncode == 0
        assert "schema up to date" in result.stdout


def test_cases_list_json_is_an_array(site: Path) -> None:
    result = hotline(site, "cases", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_report_json_has_the_satisfaction_figures(site: Path) -> None:
    result = hotline(site, "report", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert {"csat_strict", "csat_lenient", "ces"} <= figures.keys()


def test_agents_list_keeps_arabic_in_logical_order_for_scripts(site: Path) -> None:
    result = hotline(site, "agents", "list", "--json")
    rows = json.loads(result.stdout)
    assert [(r["username"], r["display_name"]) for r in rows] == [
        ("root", "مدير"),
        ("sara", "سارة"),
    ]


def test_an_unknown_os_user_is_told_how_to_get_access(site: Path) -> None:
    result = hotline(site, "cases", "list", user="mallory")
    assert result.returncode == 1
    assert "mallory is not a registered agent" in result.stderr
    assert "Traceback" not in result.stderr


def test_only_admins_add_agents_and_the_refusal_is_audited(site: Path) -> None:
    result = hotline(site, "agents", "add", "eve", "--name", "Eve", "--role", "admin", user="sara")
    assert result.returncode == 1
    assert "sara may not add agents" in result.stderr
    with sqlite3.connect(site / "hotline.db") as connection:
        rows = connection.execute(
            "SELECT actor, action, object_id, allowed FROM audit_event WHERE allowed = 0"
        ).fetchall()
    assert rows == [("sara", "agent.add", "eve", 0)]


def test_a_config_typo_is_one_line_and_exit_2(site: Path) -> None:
    (site / "config.yaml").write_text("databse:\n  url: sqlite:///x.db\n", encoding="utf-8")
    result = hotline(site, "cases", "list")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown key 'databse'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_reference_is_a_clear_refusal(site: Path) -> None:
    result = hotline(site, "cases", "show", "123456789")
    assert result.returncode == 1
    assert "check digit" in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_asterisk_config_prints_the_dialplan_and_manager_user(site: Path) -> None:
    result = hotline(site, "asterisk", "config")
    assert result.returncode == 0, result.stderr
    assert "exten => 15654,1," in result.stdout
    assert "AGI(agi://127.0.0.1:4573/hotline" in result.stdout
    assert "channelvars = HOTLINE_CASE,MIXMONITOR_FILENAME,HOTLINE_CHOICES,HOTLINE_OUTCOME" in (
        result.stdout
    )
    # The agent queue's members come from the agents table (sara has extension 201).
    queues = result.stdout.split(";;; ---- queues.conf ----")[1].split(";;; ----")[0]
    members = [line for line in queues.splitlines() if line.startswith("member =>")]
    assert members == ["member => Local/201@hotline-agents,0,201,PJSIP/201"]


@pytest.mark.skipif(not shutil.which("espeak-ng") or not shutil.which("sox"), reason="no espeak-ng")
def test_prompts_build_renders_8khz_arabic_prompts_and_digits(site: Path) -> None:
    result = hotline(site, "prompts", "build", "--voice", "espeak-ng")
    assert result.returncode == 0, result.stderr
    digit = site / "var/sounds/ar/digits/7.wav"
    with wave.open(str(digit)) as audio:
        assert (audio.getframerate(), audio.getnchannels()) == (8000, 1)
    assert "0 rendered" in hotline(site, "prompts", "build", "--voice", "espeak-ng").stdout


def test_agi_serves_a_call_and_stops_cleanly_on_sigterm(site: Path) -> None:
    port = free_port()
    env = {**os.environ, "LOGNAME": "root", "USER": "root", "HOTLINE_AGI__PORT": str(port)}
    env["HOTLINE_CONFIG"] = str(site / "config.yaml")
    server = subprocess.Popen(
        [HOTLINE, "agi"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
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
    listed = json.loads(hotline(site, "cases", "list", "--json").stdout)
    assert [case["caller_number"] for case in listed] == ["0912345678"]


def test_the_scheduler_process_assigns_due_callbacks_and_stops_on_sigterm(site: Path) -> None:
    env = {
        **os.environ,
        "LOGNAME": "root",
        "USER": "root",
        "HOTLINE_CONFIG": str(site / "config.yaml"),
        "HOTLINE_CALLBACKS__ASSIGN_INTERVAL_SECONDS": "0.2",
        # Whatever the day and hour the test runs at: everyone works, customers may be called.
        "HOTLINE_CALLBACKS__CALL_WINDOW_START": "00:00",
        "HOTLINE_CALLBACKS__CALL_WINDOW_END": "23:59:59",
        "HOTLINE_BUSINESS_HOURS__DAYS": "[mon, tue, wed, thu, fri, sat, sun]",
        "HOTLINE_BUSINESS_HOURS__START": "00:00",
        "HOTLINE_BUSINESS_HOURS__END": "23:59:59",
    }
    database = site / "hotline.db"
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO callback (phone_number, reason, department, language, due_from,"
            " overdue_at, attempts, status, created_at) VALUES ('0910000001', 'abandoned',"
            " 'billing', 'ar', '2020-01-01 00:00:00', '2999-01-01 00:00:00', 0, 'pending',"
            " '2020-01-01 00:00:00')"
        )
    server = subprocess.Popen([HOTLINE, "scheduler"], env=env, stdout=subprocess.PIPE, text=True)
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
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT callback.status, agent.username FROM callback JOIN agent"
            " ON agent.id = callback.assigned_agent_id"
        ).fetchone()
    assert row == ("assigned", "sara")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_status_tells_a_clean_stop_from_a_silent_instance(site: Path, stop: signal.Signals) -> None:
    env = {**os.environ, "HOTLINE_CONFIG": str(site / "config.yaml"), "COLUMNS": "200"}
    process = subprocess.Popen([HOTLINE, "scheduler"], env=env, stderr=subprocess.DEVNULL)
    database = site / "hotline.db"

    def beats() -> int:
        with contextlib.closing(sqlite3.connect(database)) as connection:
            return int(connection.execute("SELECT count(*) FROM heartbeat").fetchone()[0])

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
        connection.execute("UPDATE heartbeat SET seen_at = '2026-01-01 00:00:00.000000'")
    result = hotline(site, "status")
    assert result.returncode == 0, result.stderr
    if stop == signal.SIGTERM:
        assert "stopped at" in result.stdout and "silent" not in result.stdout
    else:
        assert "silent" in result.stdout and "stopped" not in result.stdout


def test_context_reads_the_chosen_config_and_opens_the_database_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cli

    config = tmp_path / "config.yaml"
    config.write_text("database:\n  url: sqlite:///ctx.db\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(cli._state, "config", config)
    ctx = cli.context()
    assert ctx.settings.database.url.endswith("ctx.db")
    assert not list(tmp_path.rglob("ctx.db"))  # transcribe and prompts build need no database
    assert ctx.db is ctx.db
    ctx.db.dispose()
    assert list(tmp_path.rglob("ctx.db"))
