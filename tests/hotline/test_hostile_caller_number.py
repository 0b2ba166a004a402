"""A hostile caller ID (issue 17, item 5): 10,240 digits presented by the PBX reach the real
FastAGI IVR (agi_callerid) and the real AMI listener (CallerIDNum), each on its own path to the
casebook, on SQLite (which would store them whole) and PostgreSQL (whose VARCHAR(32) would
fail the write): both store the call and the complaint with no number and audit the refusal,
the same on both databases."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlmodel import col, select

from casebook.db import Database
from casebook.models import AuditEvent, Call, Callback, Case
from hotline.app.components import Listener
from hotline.app.config import Settings
from hotline.simulator import PbxSimulator, SimulatedCall
from hotline.simulator.audio import tone
from ivr_flows.casebook_backend import CasebookBackend
from ivr_flows.server import AgiServer
from tests.hotline.conftest import PATIENCE

HUGE = "9" * 10_240


def test_a_10240_digit_caller_id_is_refused_alike_by_the_ivr_and_the_listener(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    settings.recordings.root = tmp_path / "recordings"
    settings.agi.host = "127.0.0.1"
    settings.agi.command_timeout = 10.0  # a safety net: healthy calls never wait for it
    callers = [
        SimulatedCall(HUGE, audio=tone(0.3, 400.0, seed=1)),
        SimulatedCall(HUGE, register_case=False),  # hangs up in the welcome: abandoned
    ]
    with AgiServer(settings, CasebookBackend(db, settings), port=0) as ivr:
        recordings = settings.recordings.root
        with PbxSimulator(seed=7, recordings_dir=recordings, agi=ivr.address) as sim:
            settings.ami.port = sim.port
            settings.ami.reconnect_initial_delay = 0.01
            listener = Listener(db, settings, threading.Event())
            listener.start()
            try:
                linkedids = sim.place_calls(callers)
                assert sim.wait_until_idle(PATIENCE)
                assert listener.store.wait_until_stored(len(callers), PATIENCE)
            finally:
                listener.stop()
    with db.session() as session:
        calls = list(session.exec(select(Call)))
        cases = list(session.exec(select(Case)))
        callbacks = list(session.exec(select(Callback)))
        audit = list(session.exec(select(AuditEvent).order_by(col(AuditEvent.id))))
    assert sorted(call.linkedid for call in calls) == sorted(linkedids)
    assert [call.caller_number for call in calls] == [None, None]
    # The IVR registered the complaint, without the number.
    assert len(cases) == 1 and cases[0].caller_number is None
    assert cases[0].call_linkedid in linkedids
    # Nobody is ever called back at a number that was refused.
    assert callbacks == []
    refusals = [
        (event.action, event.detail["caller_refused"])
        for event in audit
        if "caller_refused" in event.detail
    ]
    shown = {"given": "9" * 40 + "...", "length": 10_240, "why": "10240 digits (at most 15)"}
    assert sorted(action for action, _ in refusals) == [
        "call.record",
        "call.record",
        "case.register",
    ]
    assert all(refused == shown for _, refused in refusals)
