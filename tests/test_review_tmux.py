"""A person at a real terminal (tmux, 80 columns) confirms a draft through `hotline review`,
editing it in $EDITOR first."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from casebook import cases, jobs
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import Case, CaseStatus, RecordingKind
from hotline.app.config import load_settings
from recordings.ingest import ingest_recording
from tests.conftest import add_agent, bootstrap

pytestmark = pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
HOTLINE = str(Path(sys.executable).with_name("hotline"))
SAID = "انقطاع الإنترنت منذ ثلاثة أيام"
WORDS = [("انقطاع", False), ("الإنترنت", True), ("منذ", False), ("ثلاثة", False), ("أيام", True)]


class Terminal:
    def __init__(self, session: str) -> None:
        self.session = session

    def type(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.session],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def wait_for(self, text: str, safety_seconds: float = 60) -> str:
        deadline = time.monotonic() + safety_seconds
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared on the screen:\n{self.screen()}")


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, str]:
    config = tmp_path / "config.yaml"
    config.write_text("database:\n  url: sqlite:///hotline.db\n", encoding="utf-8")
    settings = load_settings(config, environ={})
    db = Database(settings.database, create=True)
    bootstrap(db, settings, "root")
    add_agent(db, settings, "amal", by="root", department="customer-care")
    worker = Actor.system("worker")
    message = tmp_path / "message.wav"
    message.write_bytes(b"")

    def register(session: Session) -> str:
        case = cases.register_complaint(
            session, settings, Actor.system("ivr"), caller_number="0910000001", uniqueid="1.1"
        )
        recording = ingest_recording(
            session,
            worker,
            str(message),
            kind=RecordingKind.MESSAGE,
            root=tmp_path,
            case_id=case.id,
        )
        assert recording is not None
        jobs.enqueue_transcription(session, worker, recording, utcnow())
        return case.reference or ""

    reference = db.run(register)
    policy = jobs.QueuePolicy()
    job = db.run(lambda s: jobs.claim_next_job(s, "w", policy, utcnow()))
    assert job is not None and job.id is not None
    job_id = job.id
    segments = [
        {
            "start": 0.0,
            "end": 3.0,
            "text": SAID,
            "doubtful": False,
            "words": [
                {
                    "text": f" {w}",
                    "doubtful": d,
                    "start": 0.0,
                    "end": 1.0,
                    "probability": 0.3 if d else 0.9,
                }
                for w, d in WORDS
            ],
        }
    ]
    data = jobs.TranscriptData(
        text=SAID,
        model_name="whisper-base",
        model_sha256=None,
        language="ar",
        language_probability=1.0,
        audio_seconds=3.0,
        processing_seconds=1.0,
        no_speech=False,
        segments=segments,
    )
    db.run(lambda s: jobs.finish_job(s, worker, job_id, "w", data, utcnow()))
    db.dispose()
    return config, reference


@pytest.fixture
def terminal(site: tuple[Path, str], tmp_path: Path) -> Iterator[Terminal]:
    config, _ = site
    session = f"review-{uuid.uuid4().hex[:8]}"
    editor = "sed -i s/الإنترنت/الهاتف/"
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "80",
            "-y",
            "40",
            "-e",
            "USER=amal",
            "-e",
            "LOGNAME=amal",
            "-e",
            f"EDITOR={editor}",
            "-e",
            f"HOTLINE_CONFIG={config}",
            "-e",
            "LANG=C.UTF-8",
            "bash",
            "--norc",
            "--noprofile",
        ],
        check=True,
        cwd=tmp_path,
    )
    yield Terminal(session)
    subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def test_an_agent_edits_and_confirms_a_draft_at_the_terminal(
    terminal: Terminal, site: tuple[Path, str]
) -> None:
    config, reference = site
    terminal.type(f"{HOTLINE} review", "Enter")
    screen = terminal.wait_for("[a]ccept")
    assert reference in screen
    # Shown right to left: the first word of the draft is drawn at the right end of its line.
    line = next(row for row in screen.splitlines() if "ﻉﺎﻄﻘﻧﺍ" in row)
    assert line.rstrip().endswith("ﻉﺎﻄﻘﻧﺍ")
    terminal.type("e", "Enter")
    terminal.wait_for("ﻒﺗﺎﻬﻟﺍ")  # the edited word, shaped
    terminal.type("a", "Enter")
    terminal.wait_for("(category)")
    terminal.type("2", "Enter")  # billing, network, ...: network
    terminal.wait_for("(department)")
    terminal.type("Enter")  # keep customer-care
    terminal.wait_for(f"case {reference} open")
    terminal.wait_for("no drafts waiting")

    settings = load_settings(config, environ={})
    db = Database(settings.database)
    with db.session() as s:
        case = s.exec(select(Case)).one()
    assert (case.status, case.category) == (CaseStatus.OPEN, "network")
    assert case.confirmed_text == "انقطاع الهاتف منذ ثلاثة أيام"
    assert case.draft_text == SAID
    db.dispose()
