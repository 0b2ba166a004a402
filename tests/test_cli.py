"""The installed `hotline` command, run as a person or a script would run it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

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
