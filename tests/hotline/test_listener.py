"""The AMI listener with its database: every hotline call stored exactly once, through drops,
garbage, a SIGKILL and a database that is locked for a while."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest
from sqlmodel import func, select

from casebook import calls as calls_service
from casebook import cases, site_secrets
from casebook.access import Actor
from casebook.calls import CallNote, StoredCall
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import Call, Callback, Recording, RecordingKind, TranscriptionJob
from casebook.settings import PhoneSettings
from hotline.app.components import Listener
from hotline.app.config import Settings, load_settings
from hotline.app.persist import reconcile_recordings
from hotline.simulator import PbxSimulator, SimulatedCall
from tests.hotline.conftest import FIXTURES, PATIENCE, ReplayServer, wait_until

HOTLINE = str(Path(sys.executable).with_name("hotline"))
META = json.loads((FIXTURES / "one-call.meta.json").read_text())
CALLS = 200


def loopback(settings: Settings, port: int) -> None:
    settings.ami.port = port
    settings.ami.connect_timeout = 2.0
    settings.ami.action_timeout = 2.0
    settings.ami.reconnect_initial_delay = 0.01
    settings.ami.reconnect_max_delay = 0.1


def stored_calls(db: Database) -> list[Call]:
    with db.session() as session:
        return list(session.exec(select(Call)))


def env_for(config: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "HOTLINE_CONFIG": str(config),
        "HOTLINE_AMI__PORT": str(port),
        "HOTLINE_AMI__ACTION_TIMEOUT": "2",
        "HOTLINE_AMI__RECONNECT_INITIAL_DELAY": "0.01",
        "HOTLINE_AMI__RECONNECT_MAX_DELAY": "0.2",
    }


def count_calls(database: Path) -> int:
    try:
        with sqlite3.connect(database) as connection:
            return int(connection.execute("SELECT count(*) FROM call").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_the_real_call_replayed_into_hotline_listen_is_one_call(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("database:\n  url: sqlite:///hotline.db\n", encoding="utf-8")
    settings = load_settings(config, environ={})
    Database(settings.database, create=True).dispose()  # `hotline db upgrade`'s part...
    site_secrets.create_site_keys(settings.secrets)  # ...both of them
    recording = (FIXTURES / "one-call.server.raw").read_bytes()
    with ReplayServer(recording, META["login_offset"], seed=3) as server:
        listener = subprocess.Popen(
            [HOTLINE, "listen"], env=env_for(config, server.port), stderr=subprocess.PIPE, text=True
        )
        try:
            assert wait_until(lambda: count_calls(tmp_path / "hotline.db") == 1)
        finally:
            listener.send_signal(signal.SIGTERM)
            _, log = listener.communicate(timeout=PATIENCE)
    assert listener.returncode == 0, log
    db = Database(settings.database)
    with db.session() as s:
        (call,) = s.exec(select(Call)).all()
    db.dispose()
    assert call.caller_number == "0510000001"
    assert call.recording_path == "/var/spool/asterisk-test/recordings/hotline-1795370976.9.wav"
    # The file is on the PBX, not here: the call keeps the mark, never a silent skip.
    assert call.recording_missing is True


def callers(count: int) -> list[SimulatedCall]:
    return [SimulatedCall(f"0910{n:06d}", register_case=n % 10 != 0) for n in range(count)]


def test_200_calls_through_drops_and_garbage_are_stored_once(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    settings.recordings.root = tmp_path
    with PbxSimulator(seed=21, recordings_dir=tmp_path) as sim:
        linkedids = sim.place_calls(callers(CALLS))
        # The IVR registered a complaint on a tenth of the answered calls.
        registered = linkedids[1:CALLS:10]
        for linkedid in registered:
            db.run(
                partial(
                    cases.register_complaint,
                    settings=settings,
                    actor=Actor.system("ivr"),
                    caller_number=None,
                    linkedid=linkedid,
                )
            )
        sim.schedule_drops([900, 1800, 2700, 3600, 4500], gap_events=40)
        sim.inject_malformed(1000)
        loopback(settings, sim.port)
        listener = Listener(db, settings, threading.Event())
        listener.start()
        try:
            assert sim.wait_until_idle(PATIENCE * 3)
            assert listener.store.wait_until_stored(CALLS, PATIENCE * 3)
        finally:
            listener.stop()
        assert sim.stats.logins == 6
    assert listener.client.stats.warnings >= 1000
    calls = stored_calls(db)
    assert sorted(c.linkedid for c in calls) == sorted(linkedids)
    linked = {c.linkedid for c in calls if c.case_id is not None}
    assert linked == set(registered)
    with db.session() as session:
        queued = session.exec(select(func.count()).select_from(TranscriptionJob)).one()
        abandoned_callbacks = session.exec(select(func.count()).select_from(Callback)).one()
        messages = session.exec(
            select(func.count())
            .select_from(Recording)
            .where(Recording.kind == RecordingKind.MESSAGE.value)
        ).one()
    assert queued == len(registered) == messages  # each registered caller's message, once
    # Only callers who hung up during the welcome are abandoned (every number is different):
    # the scripted IVR says it served the others (HOTLINE_OUTCOME), case stored or not.
    assert abandoned_callbacks == sum(not c.register_case for c in callers(CALLS))


def test_a_listener_killed_mid_call_and_restarted_stores_each_call_once(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database:\n  url: sqlite:///hotline.db\nrecordings:\n  root: {tmp_path}\n",
        encoding="utf-8",
    )
    site_secrets.create_site_keys(load_settings(config, environ={}).secrets)  # db upgrade's
    database = tmp_path / "hotline.db"
    with PbxSimulator(seed=5, recordings_dir=tmp_path, event_interval=0.002) as sim:
        env = env_for(config, sim.port)
        first = subprocess.Popen([HOTLINE, "listen"], env=env, stderr=subprocess.DEVNULL)
        waves = callers(20)
        linkedids = sim.place_calls(waves[:10])
        try:
            assert wait_until(lambda: count_calls(database) > 0, PATIENCE * 3)
            # The second wave has only just begun when the listener dies: calls in progress
            # (the first wave alone may all be stored at once, in one batch).
            linkedids += sim.place_calls(waves[10:])
        finally:
            first.kill()  # SIGKILL: no goodbye, no flush
            first.wait()
        before = count_calls(database)
        assert before < 20  # killed mid-stream, calls in progress
        second = subprocess.Popen([HOTLINE, "listen"], env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert sim.wait_until_idle(PATIENCE * 3)
            assert wait_until(lambda: count_calls(database) == 20, PATIENCE * 3)
            time.sleep(0.5)  # anything stored twice would show now; there is a unique index too
        finally:
            second.send_signal(signal.SIGTERM)
            _, log = second.communicate(timeout=PATIENCE)
        assert second.returncode == 0, log
    with sqlite3.connect(database) as connection:
        stored = [row[0] for row in connection.execute("SELECT linkedid FROM call")]
    assert sorted(stored) == sorted(linkedids)


def test_a_call_that_ended_while_the_listener_was_away_is_recovered_from_its_recording(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    settings.recordings.root = tmp_path
    case = db.run(
        lambda s: cases.register_complaint(
            s,
            settings,
            Actor.system("ivr"),
            caller_number="0910000001",
            uniqueid="1795.2",
            linkedid="1795.1",
        )
    )
    (tmp_path / "hotline-1795.2.wav").write_bytes(b"RIFF")
    (tmp_path / "hotline-1795.4.wav").write_bytes(b"RIFF")  # no case: an abandoned call
    (tmp_path / "hotline-1795.6.wav").write_bytes(b"RIFF")  # still being written: a live call
    old = time.time() - 600
    for name in ("hotline-1795.2.wav", "hotline-1795.4.wav"):
        os.utime(tmp_path / name, (old, old))

    def reconcile() -> list[StoredCall]:
        return db.run(lambda s: reconcile_recordings(s, settings, live_uniqueids={"1795.6"}))

    recovered = reconcile()
    assert sorted(c.linkedid for c in recovered) == ["1795.1", "1795.4"]
    assert reconcile() == []  # a second pass adds nothing
    calls = {c.linkedid: c for c in stored_calls(db)}
    assert calls["1795.1"].case_id == case.id and not calls["1795.1"].abandoned
    assert calls["1795.4"].abandoned


def test_calls_wait_while_the_database_is_locked_and_are_stored_after(
    settings: Settings, tmp_path: Path
) -> None:
    settings.database.retry_seconds = 0.2
    settings.database.sqlite_busy_timeout_ms = 20
    db = Database(settings.database, create=True)
    with PbxSimulator(seed=8, recordings_dir=tmp_path) as sim:
        loopback(settings, sim.port)
        listener = Listener(db, settings, threading.Event())
        blocker = sqlite3.connect(
            settings.database.url.removeprefix("sqlite:///"), isolation_level=None
        )
        blocker.execute("BEGIN EXCLUSIVE")
        listener.start()
        try:
            sim.place_calls(callers(5))
            assert wait_until(lambda: listener.store.stats.retries > 0, PATIENCE)
            blocker.execute("COMMIT")
            assert listener.store.wait_until_stored(5, PATIENCE * 2)
        finally:
            blocker.close()
            listener.stop()
    assert len(stored_calls(db)) == 5


@pytest.mark.parametrize("secret", ["wrong"])
def test_a_refused_login_stops_hotline_listen_with_one_clear_line(
    tmp_path: Path, secret: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("database:\n  url: sqlite:///hotline.db\n", encoding="utf-8")
    with PbxSimulator(seed=1) as sim:
        env = {**env_for(config, sim.port), "HOTLINE_AMI__SECRET": secret}
        result = subprocess.run(
            [HOTLINE, "listen"], env=env, capture_output=True, text=True, timeout=PATIENCE
        )
        assert sim.stats.logins == 0
    assert result.returncode == 1
    assert "Authentication failed" in result.stderr


def test_a_recovered_call_is_keyed_by_the_linkedid_its_recording_names(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    settings.recordings.root = tmp_path
    # The IVR registered a case for one call (its channel 1795.8 of call 1795.7); the other,
    # noted by the listener before it went away, registered none.
    db.run(
        lambda s: cases.register_complaint(
            s,
            settings,
            Actor.system("ivr"),
            caller_number="0910000007",
            uniqueid="1795.8",
            linkedid="1795.7",
        )
    )
    note = CallNote("1795.9", None, "0910000009", "15654", utcnow(), None)
    db.run(lambda s: calls_service.note_calls(s, [note], PhoneSettings()))
    old = time.time() - 600
    for name in ("hotline-1795.7-1795.8.wav", "hotline-1795.9-1795.10.wav"):
        (tmp_path / name).write_bytes(b"RIFF")
        os.utime(tmp_path / name, (old, old))

    recovered = db.run(lambda s: reconcile_recordings(s, settings, live_uniqueids=set()))

    assert sorted(c.linkedid for c in recovered) == ["1795.7", "1795.9"]
    rows = {c.linkedid: c for c in stored_calls(db)}
    assert sorted(rows) == ["1795.7", "1795.9"]  # the noted call finished, not a second row
    assert (rows["1795.7"].caller_number, rows["1795.7"].uniqueid) == ("0910000007", "1795.8")
    assert not rows["1795.7"].abandoned
    assert rows["1795.9"].caller_number == "0910000009" and rows["1795.9"].abandoned
