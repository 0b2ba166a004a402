"""`hotline demo`: calls from the PBX simulator through the real FastAGI IVR, the real AMI
listener and a transcription worker, to draft cases; with a scripted transcriber (fast) and
with the real Whisper model (slow)."""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import signal
import stat
import tempfile
import time
import wave
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from casebook.db import Database
from casebook.models import AuditEvent, Call, Case, Recording, RecordingKind
from cli_client import ApiClient
from hotline.app import demo
from hotline.app.config import load_settings
from hotline.app.demo import DemoError, DemoResult, demo_clips, run_demo
from hotline.simulator.audio import read_pcm
from transcription.result import Timings, TranscriptResult

CALLS = 5
ARABIC_LETTERS = range(0x0621, 0x064B)


def scripted(path: Path) -> TranscriptResult:
    """Says what the clip says (from the manifest), without the model."""
    with wave.open(str(path), "rb") as wav:
        seconds = wav.getnframes() / wav.getframerate()
    text = next(c.text for c in demo_clips() if read_pcm(c.path) == read_pcm(path))
    return TranscriptResult(
        text=text,
        language="ar",
        language_probability=1.0,
        duration=seconds,
        speech_duration=seconds,
        segments=(),
        no_speech=False,
        model_name="scripted",
        model_sha256="0" * 64,
        timings=Timings(0.0, 0.0, 0.0),
    )


def assert_whole_path(result: DemoResult, calls: int, caplog: pytest.LogCaptureFixture) -> None:
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    settings = load_settings(result.config_path, environ={})
    assert settings.recordings.root == result.config_path.parent / "recordings"
    assert len(result.cases) == calls
    assert len({case.reference for case in result.cases}) == calls
    for case in result.cases:
        assert case.draft_state == "ready"
        assert any(ord(char) in ARABIC_LETTERS for char in case.draft_text), case
        assert case.caller_number is not None and case.caller_number.startswith("09")
    # Every other caller keys an account number after their message; it is on their case.
    keyed = [case.keypad_number for case in result.cases]
    assert keyed[::2] == [f"2026{n:06d}" for n in range(1, calls + 1, 2)]
    assert keyed[1::2] == [None] * (calls // 2)
    db = Database(settings.database)
    try:
        with db.session() as session:
            stored = session.exec(select(Case)).all()
            assert {c.status for c in stored} == {"draft"}
            recordings = session.exec(select(Recording)).all()
            kinds = Counter(r.kind for r in recordings)
            assert kinds == {RecordingKind.MESSAGE.value: calls, RecordingKind.CALL.value: calls}
            for recording in recordings:
                digest = hashlib.sha256(Path(recording.path).read_bytes()).hexdigest()
                assert recording.sha256 == digest and recording.case_id is not None
            linked = session.exec(select(Call)).all()
            assert len(linked) == calls and all(c.case_id is not None for c in linked)
            assert all(c.ended_at is not None and not c.abandoned for c in linked)
            events = session.exec(select(AuditEvent)).all()
    finally:
        db.dispose()
    actions = Counter(e.action for e in events)
    assert actions["case.register"] == calls
    assert actions["recording.ingest"] == calls  # the IVR's, of each caller's message
    # The listener's entry for each call names both of its recordings, with their hashes.
    recorded = [e.detail["recordings"] for e in events if e.action == "call.record"]
    assert len(recorded) == calls
    hashes = {r.path: r.sha256 for r in recordings}
    assert all(
        sorted(r["kind"] for r in call) == ["call", "message"]
        and all(hashes[r["path"]] == r["sha256"] for r in call)
        for call in recorded
    )
    assert actions["transcription.done"] == calls


def test_the_demo_runs_the_whole_path_with_a_scripted_transcriber(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines: list[str] = []
    result = run_demo(tmp_path / "demo", CALLS, progress=lines.append, transcriber=scripted)

    assert_whole_path(result, CALLS, caplog)
    said = {clip.text for clip in demo_clips()}
    assert all(case.draft_text in said and case.draft_text == case.said for case in result.cases)
    assert sum("placed" in line for line in lines) == CALLS
    assert sum("stored" in line for line in lines) >= CALLS
    assert sum(line.startswith("draft ") for line in lines) == CALLS


def test_a_second_run_in_the_same_folder_adds_new_cases(tmp_path: Path) -> None:
    first = run_demo(tmp_path, 2, progress=lambda _: None, transcriber=scripted)
    # Uniqueids are epoch seconds and a sequence, as Asterisk's: a new run needs a new second.
    time.sleep(1.0 - time.time() % 1)
    again = run_demo(tmp_path, 2, progress=lambda _: None, transcriber=scripted)

    assert len(again.cases) == 2
    assert not {c.reference for c in first.cases} & {c.reference for c in again.cases}


def test_the_demo_serves_its_site_to_its_admin_until_stopped() -> None:
    """What `hotline demo` does once the drafts are ready: the admin (the OS account that ran
    it) signs in over the demo's socket and sees the cases; SIGTERM ends the serving."""
    folder = Path(tempfile.mkdtemp(prefix="hl-demo-", dir="/tmp"))  # a socket path is short
    seen: list[str] = []

    def serve(result: DemoResult) -> None:
        assert result.admin == pwd.getpwuid(os.getuid()).pw_name
        issued = ApiClient(result.server).post(
            "/sessions", {"username": result.admin, "password": result.password}
        )
        cases = ApiClient(result.server, issued["token"]).get("/drafts")
        seen.extend(case["reference"] for case in cases)
        signal.raise_signal(signal.SIGTERM)

    try:
        result = run_demo(folder, 2, progress=lambda _: None, transcriber=scripted, serve=serve)
        assert sorted(seen) == sorted(case.reference for case in result.cases)
        kept = folder / "admin-password"
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert kept.read_text(encoding="utf-8").strip() == result.password
        assert not (folder / "hotline.sock").exists()  # the server stopped with the demo
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_without_the_demo_recordings_the_demo_says_where_to_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "CLIP_FOLDERS", (tmp_path / "nowhere",))
    with pytest.raises(DemoError, match="from a clone of the repository"):
        run_demo(tmp_path / "demo", 1, progress=lambda _: None)
    assert not (tmp_path / "demo").exists()  # nothing half-made


@pytest.mark.slow
def test_five_calls_through_the_real_model_give_five_arabic_drafts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result = run_demo(tmp_path / "demo", CALLS, progress=lambda _: None)

    assert_whole_path(result, CALLS, caplog)
