"""Start-up checks: each problem is one actionable line, before anything starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from casebook.db import Database
from hotline.app.checks import (
    check_ami,
    check_database,
    check_model,
    check_recordings,
    run_checks,
)
from hotline.app.config import Settings, load_settings
from hotline.simulator import PbxSimulator
from transcription.settings import TranscriptionSettings

HOTLINE = str(Path(sys.executable).with_name("hotline"))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_ami_says_where_and_what_to_check(settings: Settings) -> None:
    settings.ami.port = closed_port()
    settings.ami.connect_timeout = 1
    check = check_ami(settings)
    assert not check.ok
    assert f"cannot connect to AMI at 127.0.0.1:{settings.ami.port}" in check.message
    assert "manager.conf" in check.message


def test_a_refused_login_names_the_user_and_the_settings(settings: Settings) -> None:
    with PbxSimulator(seed=1) as sim:
        settings.ami.port = sim.port
        settings.ami.secret = "wrong"
        refused = check_ami(settings)
        settings.ami.secret = "hotline-secret"
        accepted = check_ami(settings)
    assert not refused.ok and "ami.username/ami.secret" in refused.message
    assert accepted.ok and "AMI 11.0.0" in accepted.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_recordings_folder(settings: Settings, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    settings.recordings.root = locked / "recordings"
    check = check_recordings(settings)
    assert not check.ok and "recordings.root" in check.message


def test_a_recordings_path_that_is_a_file(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    settings.recordings.root = tmp_path / "file"
    check = check_recordings(settings)
    assert not check.ok and "is not writable" in check.message


def test_a_model_path_that_is_no_model(settings: Settings, tmp_path: Path) -> None:
    settings.transcription = TranscriptionSettings(model="path", model_path=tmp_path)
    check = check_model(settings)
    assert not check.ok and "not a CTranslate2 Whisper model directory" in check.message


def test_a_site_without_its_database_file_fails_the_check_and_gets_no_new_one(
    settings: Settings,
) -> None:
    path = Path(settings.database.url.removeprefix("sqlite:///"))
    check = check_database(settings)
    assert not check.ok
    assert check.message.startswith(
        f"database file {path} does not exist: create it with hotline db upgrade"
    )
    assert not path.exists()


def test_checks_run_once_each_and_the_database_first(settings: Settings) -> None:
    settings.ami.port = closed_port()
    settings.ami.connect_timeout = 1
    names = [check.name for check in run_checks(settings, ["listener", "agi", "scheduler"])]
    assert names == ["database", "secrets", "ami", "recordings"]


def test_hotline_listen_refuses_to_start_with_every_problem_listed(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        f"database:\n  url: sqlite:///hotline.db\nami:\n  port: {closed_port()}\n"
        "  connect_timeout: 1\n",
        encoding="utf-8",
    )
    env = {**os.environ, "HOTLINE_CONFIG": str(tmp_path / "config.yaml")}
    Database(load_settings(tmp_path / "config.yaml").database, create=True).dispose()
    result = subprocess.run(
        [HOTLINE, "listen"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "ok database" in result.stderr
    assert "FAILED ami: cannot connect to AMI" in result.stderr
    assert "start-up checks failed" in result.stderr
