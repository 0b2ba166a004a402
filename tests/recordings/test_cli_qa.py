"""The QA, recordings and audit commands, run as the installed `hotline` command by people
signed in to a running site (tests/site.py).

One site per backend for the module (a site costs a dozen commands to set up): each test makes
recordings of its own, named uniquely, and the figures tests read are those of their own agent or
period: the other tests' recordings date from a month ago, outside the samples' last 7 days."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from casebook import agents
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import QAReview, Recording
from hotline.app.config import Settings
from recordings.scorecard import score_recording
from tests.conftest import BACKENDS
from tests.recordings.helpers import recorded_call, reference_of
from tests.recordings.test_scorecard import CODES, all_scored
from tests.site import Person, Site, backend_url, running_site


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """A site with an admin, a QA reviewer (qa) and two agents (sara, rana), all signed in."""
    url = backend_url(request)
    with running_site(url) as running:
        running.add_agent("qa", ["qa"])
        running.add_agent("sara", ["agent"], "billing")
        running.add_agent("rana", ["agent"], "billing")
        yield running


def record(site: Site, name: str, agent: str | None = None, *, recent: bool = False) -> Recording:
    """A call handled by ``agent``, its case and its recording, as the listener stores them: a
    month ago unless ``recent`` (then now, in the samples' period)."""
    with site.database() as (db, settings):
        agent_id = None if agent is None else actor_of(db, settings, agent).agent_id
        created = None if recent else utcnow() - timedelta(days=30)
        unique = f"{name}-{uuid.uuid4().hex[:8]}"
        return recorded_call(db, settings, unique, agent_id=agent_id, created=created)


def actor_of(db: Database, settings: Settings, username: str) -> Actor:
    return db.run(lambda s: agents.resolve_actor(s, username, settings.roles))


def test_qa_report_json_prints_per_agent_and_per_criterion_figures(site: Site) -> None:
    before = json.loads(site.people["qa"].ok("qa", "report", "--json").stdout)["reviews"]
    recordings = [
        (record(site, name, agent="rana").id or 0, value)
        for name, value in (("c1", 2.0), ("c2", 1.0))
    ]
    with site.database() as (db, settings):
        qa = actor_of(db, settings, "qa")
        for rec, value in recordings:

            def score(s: Session, rec: int = rec, value: float = value) -> QAReview:
                return score_recording(s, settings.qa, qa, rec, all_scored(value))

            db.run(score)

    result = site.people["qa"].ok("qa", "report", "--period", "7d", "--json")

    figures = json.loads(result.stdout)
    assert figures["reviews"] == before + 2
    (row,) = [row for row in figures["per_agent"] if row["agent"] == "rana"]
    assert row["reviews"] == 2
    # c2: half on the 0-2 criteria (weight 10 of 11), confidentiality (yes/no) met.
    assert row["total"] == pytest.approx((100 + 100 * 6 / 11) / 2)
    assert row["criteria"]["seriousness"] == pytest.approx(1.5)
    assert row["criteria"]["speed"] == pytest.approx(1.5)
    criteria = {item["code"]: item for item in figures["per_criterion"]}
    assert len(criteria) == 10
    assert criteria["confidentiality"]["label_ar"] == "السرية وحماية البيانات"
    assert all(0 <= item["percent"] <= 100 for item in criteria.values())
    table = site.people["qa"].ok("qa", "report").stdout
    assert f"reviews {before + 2}" in table


def test_qa_score_walks_the_reviewer_through_the_scorecard(site: Site) -> None:
    recording = record(site, "c1", agent="sara")
    rec = recording.id or 0
    # Ten answers (the third off its scale), the comment; then the third is asked again.
    answers = ["2", "2", "3", "2", "2", "2", "2", "نعم", "2", "1", "أحسنت", "1"]
    result = site.people["qa"].run("qa", "score", str(rec), stdin="\n".join(answers) + "\n")
    assert result.returncode == 0, result.stderr
    assert "answer 0, 1 or 2, got '3'" in result.stderr
    assert "الاستماع الجيد والتعاطف" in result.stdout
    # Who and what is scored comes first: the agent, the case, the kind, the length, the day.
    context = result.stdout[: result.stdout.index("· listening_empathy")]
    with site.database() as (db, _settings):
        reference = reference_of(db, recording)
    assert "sara" in context and "(call)" in context and "0:02" in context
    assert f"(case): {reference}" in context
    assert "(recorded): 20" in context
    with site.database() as (db, _settings), db.session() as s:
        review = s.exec(select(QAReview).where(QAReview.recording_id == rec)).one()
    # The third criterion (transparency) was asked again and took the second answer.
    assert review.scores["transparency"] == 1.0 and review.comment == "أحسنت"
    assert result.stdout.count("· transparency (0, 1 or 2)") == 2


def test_qa_score_with_options_names_a_bad_answer(site: Site) -> None:
    rec = record(site, "c1").id or 0
    refused = site.people["qa"].run("qa", "score", str(rec), "--score", "speed=9")
    assert refused.returncode == 1 and "speed" in refused.stderr


def test_qa_verify_reports_a_changed_recording_with_its_case_and_exits_1(site: Site) -> None:
    recording = record(site, "c1")
    path = Path(recording.path)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    result = site.people["qa"].run("qa", "verify", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    (changed,) = report["changed"]
    assert changed["recording_id"] == recording.id and changed["case_reference"]


def fake_player(person: Person) -> tuple[dict[str, str], Path]:
    """An `aplay` first on PATH that copies what it is given: what the person heard."""
    bin_dir = Path(tempfile.mkdtemp(prefix="bin-", dir=person.home))
    heard = person.home / "heard.wav"
    player = bin_dir / "aplay"
    player.write_text(f'#!/bin/sh\nfor f; do :; done\ncp "$f" {heard}\n', encoding="utf-8")
    player.chmod(0o755)
    return person.env(PATH=f"{bin_dir}:{os.environ['PATH']}"), heard


def test_recordings_play_streams_through_the_server_and_the_listen_is_listed(
    site: Site,
) -> None:
    recording = record(site, "c1")
    qa = site.people["qa"]
    env, heard = fake_player(qa)
    result = qa.run("recordings", "play", str(recording.id), "--reason", "QA", env=env)
    assert result.returncode == 0, result.stderr
    assert heard.read_bytes() == Path(recording.path).read_bytes()
    listed = site.people["admin"].ok("audit", "list", "--object-type", "recording", "--json")
    actions = [(e["actor"], e["action"], e["detail"].get("why")) for e in json.loads(listed.stdout)]
    assert ("qa", "recording.sent", "QA") in actions
    assert ("qa", "recording.played", "QA") in actions  # the client's word that it played


def test_recordings_export_and_retention_dry_run(site: Site) -> None:
    recording = record(site, "c1")
    admin = site.people["admin"]
    target = admin.home / "copy.wav"
    exported = admin.ok(
        "recordings", "export", str(recording.id), "--to", str(target), "--reason", "court"
    )
    assert f"exported to {target}" in exported.stdout
    assert target.read_bytes() == Path(recording.path).read_bytes()
    again = admin.run(
        "recordings", "export", str(recording.id), "--to", str(target), "--reason", "court"
    )
    assert again.returncode == 1 and "exists: not overwritten" in again.stderr
    into_folder = admin.ok(
        "recordings", "export", str(recording.id), "--to", str(admin.home), "--reason", "court"
    )
    assert (admin.home / Path(recording.path).name).read_bytes() == target.read_bytes()
    assert "exported to" in into_folder.stdout
    refused = site.people["sara"].run(
        "recordings", "export", str(recording.id), "--to", "x.wav", "--reason", "mine"
    )
    assert refused.returncode == 1 and "sara may not export" in refused.stderr
    assert not (site.people["sara"].home / "x.wav").exists()
    preview = admin.ok("recordings", "retention", "--dry-run", "--json")
    assert json.loads(preview.stdout) == []


def alsa_player(person: Person) -> dict[str, str]:
    """An `aplay` first on PATH as on a machine without a sound card: ALSA noise, exit 1."""
    bin_dir = Path(tempfile.mkdtemp(prefix="bin-", dir=person.home))
    player = bin_dir / "aplay"
    player.write_text(
        "#!/bin/sh\n"
        + "echo \"ALSA lib confmisc.c:855:(parse_card) cannot find card '0'\" >&2\n" * 20
        + "echo 'aplay: main:831: audio open error: No such file or directory' >&2\nexit 1\n",
        encoding="utf-8",
    )
    player.chmod(0o755)
    return person.env(PATH=f"{bin_dir}:{os.environ['PATH']}")


def recording_actions(site: Site, recording: int) -> list[tuple[str, str, bool]]:
    listed = site.people["admin"].ok("audit", "list", "--object-type", "recording", "--json")
    return [
        (event["actor"], event["action"], event["allowed"])
        for event in json.loads(listed.stdout)
        if event["object_id"] == str(recording)
    ]


def test_recordings_play_without_audio_is_an_error_and_no_listen(site: Site) -> None:
    recording = record(site, "c1").id or 0
    qa = site.people["qa"]
    failed = qa.run("recordings", "play", str(recording), "--reason", "QA", env=alsa_player(qa))
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and "ALSA lib" not in failed.stderr
    assert "(not played): aplay stopped with exit code 1: aplay: main:831: audio open error" in (
        failed.stderr
    )
    actions = recording_actions(site, recording)
    assert ("qa", "recording.play_failed", True) in actions
    assert not any(action == "recording.played" for _, action, _ in actions)
    # No player at all: said before anything is fetched, nothing on record.
    empty = Path(tempfile.mkdtemp(prefix="empty-bin-", dir=qa.home))
    none = qa.run(
        "recordings", "play", str(recording), "--reason", "QA", env=qa.env(PATH=str(empty))
    )
    assert none.returncode == 1 and "no audio player found" in none.stderr
    assert len(recording_actions(site, recording)) == len(actions)


def test_recordings_export_to_a_missing_folder_says_so_and_fetches_nothing(site: Site) -> None:
    recording = record(site, "c1").id or 0
    admin = site.people["admin"]
    nowhere = admin.home / "no-such-folder"
    result = admin.run(
        "recordings", "export", str(recording), "--to", f"{nowhere}/copy.wav", "--reason", "court"
    )
    assert result.returncode == 1
    assert f"folder {nowhere} does not exist: nothing fetched" in result.stderr
    assert [entry for entry in recording_actions(site, recording) if entry[0] == "admin"] == []


def test_the_same_seed_twice_is_the_same_sample_and_what_was_left_out_is_said(
    site: Site,
) -> None:
    for name in ("c1", "c2", "c3"):
        record(site, name, agent="sara", recent=True)
    qa = site.people["qa"]
    first = json.loads(
        qa.ok("qa", "sample", "--period", "7d", "--per-agent", "2", "--seed", "5", "--json").stdout
    )
    second = json.loads(
        qa.ok("qa", "sample", "--period", "7d", "--per-agent", "2", "--seed", "5", "--json").stdout
    )
    assert second["recordings"] == first["recordings"] and len(first["recordings"]) == 2
    assert (first["repeated"], second["repeated"]) == (False, True)
    other = qa.ok("qa", "sample", "--period", "7d", "--per-agent", "2", "--seed", "6").stdout
    assert "1 recordings for qa; seed 6" in other
    assert "(drawn for you in an earlier sample)" in other and ": 2 · " in other
    again = qa.ok(
        "qa", "sample", "--period", "7d", "--per-agent", "2", "--seed", "7", "--include-drawn"
    ).stdout
    assert "2 recordings for qa; seed 7" in again


def test_qa_history_shows_every_version_and_a_stale_score_is_refused(site: Site) -> None:
    rec = record(site, "c1", agent="sara").id or 0
    qa = site.people["qa"]
    scores = [f"--score={c}=2" for c in CODES if c != "confidentiality"]
    scores.append("--score=confidentiality=yes")
    qa.ok("qa", "score", str(rec), *scores)
    rescored = qa.ok("qa", "score", str(rec), *scores[:-1], "--score=confidentiality=no")
    assert "(version 2)" in rescored.stdout
    assert "v1 qa" in rescored.stdout  # the earlier version shown before scoring
    history = json.loads(qa.ok("qa", "history", str(rec), "--json").stdout)
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert history["versions"][1]["total"] < history["versions"][0]["total"]


def test_audit_verify_exits_0_on_an_intact_log_and_1_on_an_edited_one(site: Site) -> None:
    # Last in the module: on SQLite it edits the shared site's log past its trigger.
    admin = site.people["admin"]
    intact = admin.ok("audit", "verify")
    assert "audit log intact" in intact.stdout
    refused = site.people["sara"].run("audit", "verify")
    assert refused.returncode == 1 and "sara may not read the audit log" in refused.stderr
    if not site.database_url.startswith("sqlite"):
        return  # editing the log past its trigger: shown on SQLite
    with sqlite3.connect(site.folder / "hotline.db") as connection:
        connection.execute("DROP TRIGGER audit_event_no_update")
        connection.execute("UPDATE audit_event SET actor = 'nobody' WHERE id = 2")
    broken = admin.run("audit", "verify", "--json")
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert report["first_break"]["event_id"] == 2 and report["first_break"]["kind"] == "edited"
