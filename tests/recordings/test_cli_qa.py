"""The QA, recordings and audit commands, run as the installed `hotline` command."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from casebook import agents
from casebook.db import Database
from casebook.models import QAReview
from hotline.app.config import Settings, load_settings
from recordings.scorecard import score_recording
from tests.conftest import add_agent, bootstrap
from tests.recordings.helpers import recorded_call
from tests.recordings.test_scorecard import all_scored

HOTLINE = str(Path(sys.executable).with_name("hotline"))


def hotline(
    site: Path, *args: str, user: str = "root", stdin: str | None = None, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": path or os.environ["PATH"],
        "LOGNAME": user,
        "USER": user,
        "HOTLINE_CONFIG": str(site / "config.yaml"),
        "COLUMNS": "100",
    }
    return subprocess.run(
        [HOTLINE, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, Settings, Database]]:
    """A site with an admin (root), a QA reviewer and an agent, and a database to seed."""
    (tmp_path / "config.yaml").write_text(
        "database:\n  url: sqlite:///hotline.db\n", encoding="utf-8"
    )
    settings = load_settings(tmp_path / "config.yaml")
    db = Database(settings.database, create=True)
    bootstrap(db, settings, "root")
    for username, role in (("qa", "qa"), ("sara", "agent")):
        add_agent(db, settings, username, [role], by="root")
    yield tmp_path, settings, db
    db.dispose()


def agent_id(db: Database, settings: Settings, username: str) -> int | None:
    return db.run(lambda s: agents.resolve_actor(s, username, settings.roles)).agent_id


def test_qa_report_json_prints_per_agent_and_per_criterion_figures(
    site: tuple[Path, Settings, Database],
) -> None:
    folder, settings, db = site
    sara = agent_id(db, settings, "sara")
    qa = db.run(lambda s: agents.resolve_actor(s, "qa", settings.roles))
    for name, value in (("c1", 2.0), ("c2", 1.0)):
        rec = recorded_call(db, settings, name, agent_id=sara).id or 0

        def score(s: Session, rec: int = rec, value: float = value) -> QAReview:
            return score_recording(s, settings.qa, qa, rec, all_scored(value))

        db.run(score)

    result = hotline(folder, "qa", "report", "--period", "7d", "--json")

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["reviews"] == 2
    (row,) = figures["per_agent"]
    assert (row["agent"], row["reviews"]) == ("sara", 2)
    # c2: half on the 0-2 criteria (weight 10 of 11), confidentiality (yes/no) met.
    assert row["total"] == pytest.approx((100 + 100 * 6 / 11) / 2)
    assert row["criteria"]["seriousness"] == pytest.approx(1.5)
    criteria = {item["code"]: item for item in figures["per_criterion"]}
    assert len(criteria) == 10
    assert criteria["confidentiality"]["label_ar"] == "السرية وحماية البيانات"
    assert criteria["speed"]["percent"] == pytest.approx(75.0)


def test_audit_verify_exits_0_on_an_intact_log_and_1_on_an_edited_one(
    site: tuple[Path, Settings, Database],
) -> None:
    folder, _settings, _db = site
    intact = hotline(folder, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "audit log intact" in intact.stdout
    with sqlite3.connect(folder / "hotline.db") as connection:
        connection.execute("DROP TRIGGER audit_event_no_update")
        connection.execute("UPDATE audit_event SET actor = 'nobody' WHERE id = 2")
    broken = hotline(folder, "audit", "verify", "--json")
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert report["first_break"]["event_id"] == 2 and report["first_break"]["kind"] == "edited"
    refused = hotline(folder, "audit", "verify", user="sara")
    assert refused.returncode == 1 and "sara may not read the audit log" in refused.stderr


def test_qa_score_walks_the_reviewer_through_the_scorecard(
    site: tuple[Path, Settings, Database],
) -> None:
    folder, settings, db = site
    rec = recorded_call(db, settings, "c1").id or 0
    # Ten answers (one wrong, asked again), then the comment.
    answers = ["2", "2", "3", "1", "2", "2", "2", "2", "نعم", "2", "1", "أحسنت"]
    result = hotline(folder, "qa", "score", str(rec), user="qa", stdin="\n".join(answers) + "\n")
    assert result.returncode == 0, result.stderr
    assert "answer 0, 1 or 2, got '3'" in result.stderr
    assert "الاستماع الجيد والتعاطف" in result.stdout
    with sqlite3.connect(folder / "hotline.db") as connection:
        scores, comment = connection.execute("SELECT scores, comment FROM qa_review").fetchone()
    assert json.loads(scores)["transparency"] == 1.0 and comment == "أحسنت"


def test_qa_verify_reports_a_changed_recording_with_its_case_and_exits_1(
    site: tuple[Path, Settings, Database],
) -> None:
    folder, settings, db = site
    recording = recorded_call(db, settings, "c1")
    path = Path(recording.path)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    result = hotline(folder, "qa", "verify", "--json", user="qa")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    (changed,) = report["changed"]
    assert changed["recording_id"] == recording.id and changed["case_reference"]


def test_recordings_play_through_the_installed_player_and_the_listen_is_listed(
    site: tuple[Path, Settings, Database], tmp_path: Path
) -> None:
    folder, settings, db = site
    recording = recorded_call(db, settings, "c1")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    heard = tmp_path / "heard.wav"
    player = bin_dir / "aplay"
    player.write_text(f'#!/bin/sh\nfor f; do :; done\ncp "$f" {heard}\n', encoding="utf-8")
    player.chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"  # found before any real player
    result = hotline(
        folder, "recordings", "play", str(recording.id), "--reason", "QA", user="qa", path=path
    )
    assert result.returncode == 0, result.stderr
    assert heard.read_bytes() == Path(recording.path).read_bytes()
    listed = hotline(folder, "audit", "list", "--object-type", "recording", "--json")
    actions = [(e["actor"], e["action"], e["detail"].get("why")) for e in json.loads(listed.stdout)]
    assert ("qa", "recording.play", "QA") in actions


def test_recordings_export_and_retention_dry_run(
    site: tuple[Path, Settings, Database], tmp_path: Path
) -> None:
    folder, settings, db = site
    recording = recorded_call(db, settings, "c1")
    target = tmp_path / "copy.wav"
    exported = hotline(
        folder, "recordings", "export", str(recording.id), "--to", str(target), "--reason", "court"
    )
    assert exported.returncode == 0, exported.stderr
    assert target.read_bytes() == Path(recording.path).read_bytes()
    refused = hotline(
        folder,
        "recordings",
        "export",
        str(recording.id),
        "--to",
        "x.wav",
        "--reason",
        "mine",
        user="sara",
    )
    assert refused.returncode == 1 and "sara may not export" in refused.stderr
    preview = hotline(folder, "recordings", "retention", "--dry-run", "--json")
    assert preview.returncode == 0, preview.stderr
    assert json.loads(preview.stdout) == []
