"""`hotline callbacks dial` against the PBX simulator: the Originate on the wire rings the
agent's extension and then the customer, and the attempt's result is stored."""

from __future__ import annotations

import hashlib
import socket
from datetime import time, timedelta
from pathlib import Path
from time import monotonic

import pytest
from sqlmodel import Session, select

from casebook import agents
from casebook.clock import utcnow
from casebook.db import Database
from casebook.errors import AccessDenied, RuleViolation
from casebook.models import (
    AttemptResult,
    Callback,
    CallbackAttempt,
    CallbackReason,
    CallbackStatus,
    Recording,
    RecordingKind,
)
from hotline.ami import AmiClient
from hotline.ami_protocol import AmiMessage, ParseStats, iter_messages
from hotline.app.config import Settings, load_settings
from hotline.app.dial import OriginateWatch, dial_callback
from hotline.app.persist import reconcile_recordings
from hotline.simulator import PbxSimulator
from tests.conftest import add_agent, bootstrap
from tests.hotline.conftest import FIXTURES, RecordingHandler, fast_settings, running
from tests.site import running_site


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Settings, Database]:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database:\n  url: sqlite:///hotline.db\nrecordings:\n  root: {tmp_path}\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    db = Database(settings.database, create=True)
    bootstrap(db, settings, "root")
    add_agent(db, settings, "amal", by="root", department="customer-care", extension="201")
    return config, settings, db


def assigned_callback(db: Database, settings: Settings, number: str, to: str = "amal") -> int:
    def work(session: Session) -> int:
        callback = Callback(
            phone_number=number,
            reason=CallbackReason.ABANDONED.value,
            department="customer-care",
            due_from=utcnow() - timedelta(minutes=1),
            overdue_at=utcnow() + timedelta(days=1),
            # The customer takes calls at any hour: these tests run on the wall clock.
            window_start=time.min,
            window_end=time.max,
            status=CallbackStatus.ASSIGNED.value,
            assigned_agent_id=agents.resolve_actor(session, to, settings.roles).agent_id,
        )
        session.add(callback)
        session.flush()
        return callback.id or 0

    return db.run(work)


def test_hotline_callbacks_dial_rings_the_agent_then_the_customer(tmp_path: Path) -> None:
    """As an agent signed in runs it: the server dials (it alone holds the AMI secret)."""
    recordings = tmp_path / "recordings"
    with (
        PbxSimulator(seed=4, recordings_dir=recordings) as sim,
        running_site(
            sections={"ami": {"port": sim.port}, "recordings": {"root": str(recordings)}}
        ) as hotline_site,
    ):
        amal = hotline_site.add_agent("amal", ["agent"], "customer-care", extension="201")
        with hotline_site.database() as (db, settings):
            callback_id = assigned_callback(db, settings, "0920000002")
        result = amal.run("callbacks", "dial", str(callback_id))
        (originate,) = sim.originated
        assert result.returncode == 0, result.stderr
        assert originate["Channel"] == "Local/201@hotline-agents"
        assert (originate["Context"], originate["Exten"]) == ("hotline-callback", "0920000002")
        assert originate.get_all("Variable") == [f"HOTLINE_CALLBACK={callback_id}"]
        assert "answered" in result.stdout
        with hotline_site.database() as (db, _settings), db.session() as s:
            callback = s.get(Callback, callback_id)
            attempt = s.exec(select(CallbackAttempt)).one()
            recording = s.exec(select(Recording)).one()
    assert callback is not None and callback.status == CallbackStatus.DONE
    assert attempt.result == "answered" and attempt.detail == "customer leg: ANSWER"
    assert recording.kind == RecordingKind.CALLBACK
    # Ingested once Asterisk closed it (the simulator, like MixMonitor, leaves the header's
    # lengths at 0 until the recording channel hangs up): its full duration and final hash.
    assert recording.duration_seconds == pytest.approx(1.0)
    final = Path(recording.path).read_bytes()
    assert recording.size_bytes == len(final)
    assert recording.sha256 == hashlib.sha256(final).hexdigest()


@pytest.mark.parametrize(
    ("dial_status", "result"),
    [("BUSY", "busy"), ("NOANSWER", "no_answer"), ("CHANUNAVAIL", "failed")],
)
def test_an_unanswered_callback_is_stored_and_retried(
    site: tuple[Path, Settings, Database], tmp_path: Path, dial_status: str, result: str
) -> None:
    _, settings, db = site
    callback_id = assigned_callback(db, settings, "0930000003")
    amal = db.run(lambda s: agents.resolve_actor(s, "amal", settings.roles))
    with PbxSimulator(
        seed=5, recordings_dir=tmp_path, dial_outcomes={"0930000003": dial_status}
    ) as sim:
        settings.ami.port = sim.port
        outcome = dial_callback(db, settings, amal, callback_id, timeout=30)
    assert outcome.result == result
    assert outcome.callback.status == CallbackStatus.PENDING  # retried after the delay
    assert outcome.callback.attempts == 1
    assert outcome.callback.owner_agent_id == amal.agent_id  # the same agent first next time


def test_an_agent_without_an_extension_or_another_agents_callback_is_refused(
    site: tuple[Path, Settings, Database],
) -> None:
    _, settings, db = site
    callback_id = assigned_callback(db, settings, "0940000004")
    add_agent(db, settings, "omar", by="root", department="billing", extension="202")
    root = db.run(lambda s: agents.resolve_actor(s, "root", settings.roles))
    omar = db.run(lambda s: agents.resolve_actor(s, "omar", settings.roles))
    with PbxSimulator(seed=6) as sim:
        settings.ami.port = sim.port
        with pytest.raises(RuleViolation, match="no phone extension"):
            dial_callback(db, settings, root, callback_id, timeout=10)
        with pytest.raises(AccessDenied, match="not assigned to omar"):
            dial_callback(db, settings, omar, callback_id, timeout=10)
        assert sim.originated == []
    with db.session() as s:
        assert s.exec(select(CallbackAttempt)).all() == []


def test_without_an_extension_the_dial_fails_at_once_and_never_contacts_the_pbx(
    site: tuple[Path, Settings, Database],
) -> None:
    """Issue 18: it spent 20 s retrying the AMI before it looked at the agent's extension."""
    _, settings, db = site
    add_agent(db, settings, "nour", by="root", department="customer-care")
    callback_id = assigned_callback(db, settings, "0940000006", to="nour")
    nour = db.run(lambda s: agents.resolve_actor(s, "nour", settings.roles))
    with socket.create_server(("127.0.0.1", 0)) as pbx:  # listens, never answers
        settings.ami.port, settings.ami.connect_timeout = pbx.getsockname()[1], 5.0
        started = monotonic()
        with pytest.raises(RuleViolation, match="nour has no phone extension"):
            dial_callback(db, settings, nour, callback_id, timeout=10)
        assert monotonic() - started < 2
        pbx.setblocking(False)
        with pytest.raises(BlockingIOError):
            pbx.accept()  # nobody connected


def test_a_callback_that_outlives_its_dialler_has_its_recording_ingested_later(
    site: tuple[Path, Settings, Database], tmp_path: Path
) -> None:
    _, settings, db = site
    callback_id = assigned_callback(db, settings, "0950000005")
    amal = db.run(lambda s: agents.resolve_actor(s, "amal", settings.roles))
    with PbxSimulator(seed=6, recordings_dir=tmp_path, callback_talk_seconds=1.0) as sim:
        settings.ami.port = sim.port
        # The dialler stops waiting while they still talk: the open recording is left alone.
        outcome = dial_callback(db, settings, amal, callback_id, timeout=30, call_timeout=0.0)
        # The simulator plays its calls on to someone listening (the AMI listener would be).
        with running(AmiClient(fast_settings(sim.port), RecordingHandler())):
            assert sim.wait_until_idle(30)
    assert outcome.result == "answered"
    with db.session() as s:
        assert s.exec(select(Recording)).all() == []
    later = utcnow() + timedelta(minutes=5)
    db.run(lambda s: reconcile_recordings(s, settings, live_uniqueids=set(), now=later))
    with db.session() as s:
        recording = s.exec(select(Recording)).one()
    assert recording.kind == RecordingKind.CALLBACK
    assert recording.duration_seconds == pytest.approx(1.0)
    assert recording.sha256 == hashlib.sha256(Path(recording.path).read_bytes()).hexdigest()


def test_the_recording_counts_as_closed_only_when_its_channel_hangs_up_on_asterisk() -> None:
    data = (FIXTURES / "callback" / "answered.server.raw").read_bytes()
    messages = list(iter_messages(data, expect_banner=True, stats=ParseStats()))
    watch = OriginateWatch()
    watch.follow("orig-1")
    last_hangup = max(i for i, m in enumerate(messages) if m.name == "Hangup")
    for n, message in enumerate(messages):
        watch.on_event(message, utcnow())
        if message.name == "DialEnd" and message.get("Channel"):
            assert watch.result == "answered"
        # Answered, and three of the four channels gone: MixMonitor's channel is still up.
        assert watch.wait_closed(0) is (n >= last_hangup)
    assert messages[last_hangup].get("Uniqueid") == messages[last_hangup].get("Linkedid")


def test_the_agents_own_dial_end_is_not_taken_for_the_customers() -> None:
    # Through [hotline-agents] the agent's phone is dialled by the agents-context half, which
    # shares the call's Linkedid: its DialEnd ANSWER can come after OriginateResponse (seen on
    # Asterisk 22). Only the originated channel's own Dial is the customer's leg.
    def event(*headers: tuple[str, str]) -> AmiMessage:
        return AmiMessage(headers)

    originated, agents_half = "1800.1", "1800.2"
    watch = OriginateWatch()
    watch.follow("originate-ab12cd34-1")
    for message in (
        event(
            ("Event", "OriginateResponse"),
            ("ActionID", "originate-ab12cd34-1"),
            ("Response", "Success"),
            ("Channel", "Local/201@hotline-agents-00000001;1"),
            ("Uniqueid", originated),
        ),
        event(
            ("Event", "DialEnd"),
            ("Channel", "Local/201@hotline-agents-00000001;2"),
            ("Uniqueid", agents_half),
            ("Linkedid", originated),
            ("DialStatus", "ANSWER"),
        ),
        event(
            ("Event", "DialEnd"),
            ("Channel", "Local/201@hotline-agents-00000001;1"),
            ("Uniqueid", originated),
            ("Linkedid", originated),
            ("DialStatus", "NOANSWER"),
        ),
    ):
        watch.on_event(message, utcnow())
    assert watch.result == AttemptResult.NO_ANSWER


def test_the_customers_dial_end_before_the_originate_response_is_still_read() -> None:
    # Asterisk 22: a customer who answers at once can end the originated channel's Dial before
    # OriginateResponse names that channel (seen in the real-PBX suite's two diallers at once).
    originated = "1800.1"
    watch = OriginateWatch()
    watch.follow("originate-ab12cd34-1")
    for message in (
        AmiMessage(
            (
                ("Event", "DialEnd"),
                ("Channel", "Local/201@hotline-agents-00000001;1"),
                ("Uniqueid", originated),
                ("Linkedid", originated),
                ("DialStatus", "ANSWER"),
            )
        ),
        AmiMessage(
            (
                ("Event", "OriginateResponse"),
                ("ActionID", "originate-ab12cd34-1"),
                ("Response", "Success"),
                ("Channel", "Local/201@hotline-agents-00000001;1"),
                ("Uniqueid", originated),
            )
        ),
        AmiMessage(
            (
                ("Event", "Hangup"),
                ("Channel", "Local/201@hotline-agents-00000001;1"),
                ("Uniqueid", originated),
                ("Linkedid", originated),
            )
        ),
    ):
        watch.on_event(message, utcnow())
    assert watch.result == AttemptResult.ANSWERED
    assert watch.wait_closed(0)
