"""The PBX simulator handing its calls to the real FastAGI IVR: what the IVR does reaches the
AMI listener as Asterisk would show it."""

from __future__ import annotations

import socket
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.ami import AmiClient
from hotline.app.config import Settings
from hotline.runners import build_client
from hotline.simulator import PbxSimulator, SimulatedCall
from hotline.simulator.audio import tone
from ivr_flows.server import AgiServer
from tests.hotline.conftest import (
    CollectingSink,
    RecordingHandler,
    fast_settings,
    running,
    wait_until,
)
from tests.ivr_flows.memory_backend import MemoryBackend


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def ivr(tmp_path: Path, backend: MemoryBackend) -> Iterator[AgiServer]:
    settings = Settings()
    settings.recordings.root = tmp_path / "recordings"
    settings.agi.host = "127.0.0.1"
    settings.agi.command_timeout = 10.0  # a safety net: healthy calls never wait for it
    with AgiServer(settings, backend, port=0) as server:
        yield server


def test_calls_through_the_real_ivr_are_tracked_with_case_message_and_choices(
    tmp_path: Path, ivr: AgiServer, backend: MemoryBackend, sink: CollectingSink
) -> None:
    voices = [tone(0.3, 300.0 + 100 * n, seed=n) for n in range(3)]
    accounts = ["", "20260001", ""]  # the second caller keys an account number
    callers = [
        SimulatedCall(f"091000000{n}", category=str(n + 1), account_number=account, audio=voice)
        for n, (voice, account) in enumerate(zip(voices, accounts, strict=True))
    ]
    recordings = tmp_path / "recordings"
    with PbxSimulator(seed=5, recordings_dir=recordings, agi=ivr.address) as sim:
        client, _ = build_client(fast_settings(sim.port), sink)
        with running(client):
            linkedids = sim.place_calls(callers)
            calls = sink.wait_for(3)
            assert sim.wait_until_idle(10)

    assert sorted(c.linkedid for c in calls) == sorted(linkedids)
    assert backend.case_count() == 3
    for call in calls:
        case = backend.case_for_uniqueid(call.uniqueid)
        assert case is not None and case.linkedid == call.linkedid
        assert call.case_reference == case.reference
        assert call.caller_number == case.caller_number
        n = int(call.caller_number or "") % 10
        assert case.category == ("billing", "network", "staff")[n]
        assert case.keypad_number == (accounts[n] or None)
        assert call.ivr_choices == (
            "HotlineMenu=main_menu:1",
            f"HotlineMenu=category_menu:{n + 1}",
        )
        message = recordings.resolve() / f"message-{call.uniqueid}.wav"
        assert call.message_path == case.message_path == str(message)
        assert call.recording_path == str(
            recordings / f"hotline-{call.linkedid}-{call.uniqueid}.wav"
        )
        for path in (message, Path(call.recording_path)):
            with wave.open(str(path), "rb") as wav:
                assert wav.readframes(wav.getnframes()) == voices[n]
        assert call.hangup_cause == 16 and not call.abandoned


def test_the_ivr_shows_on_ami_as_varset_userevent_and_agistatus(ivr: AgiServer) -> None:
    handler = RecordingHandler()
    with PbxSimulator(agi=ivr.address) as sim:
        client = AmiClient(fast_settings(sim.port, event_filters=[]), handler)
        with running(client):
            [linkedid] = sim.place_calls([SimulatedCall("0910000001", audio=tone(0.2))])
            assert wait_until(lambda: [e.name for e in handler.events].count("Cdr") == 2)
    mine = [e for e in handler.events if e.get("Linkedid") == linkedid]
    agi = next(e for e in mine if e.name == "Newexten" and e.get("Application") == "AGI")
    assert agi.get("AppData") == f"agi://{ivr.address[0]}:{ivr.address[1]}/hotline,{linkedid}"
    hotline_half = agi.get("Uniqueid")
    assert (agi.get("Channel") or "").endswith(";2") and hotline_half != linkedid
    variables = {e.get("Variable"): e.get("Value") for e in mine if e.name == "VarSet"}
    assert variables["AGISTATUS"] == "SUCCESS"
    assert variables["HOTLINE_CASE"]
    events = [e.get("UserEvent") for e in mine if e.name == "UserEvent"]
    assert events == ["HotlineMenu", "HotlineMenu", "HotlineMessage", "HotlineCallEnded"]
    message = next(e for e in mine if e.get("UserEvent") == "HotlineMessage")
    assert message.get("Status") == "dtmf" and message.get("Uniqueid") == hotline_half
    keys = [e.get("Digit") for e in mine if e.name == "DTMFEnd"]
    assert keys == ["1", "1"]


def test_callers_who_hang_up_or_stay_silent_register_nothing(
    ivr: AgiServer, backend: MemoryBackend, sink: CollectingSink
) -> None:
    callers = [
        SimulatedCall("0910000001", register_case=False),
        SimulatedCall("0910000002", leave_message=False),
    ]
    with PbxSimulator(agi=ivr.address) as sim:
        client, _ = build_client(fast_settings(sim.port), sink)
        with running(client):
            sim.place_calls(callers)
            calls = sink.wait_for(2)
    assert len(calls) == 2 and all(c.abandoned for c in calls)
    assert backend.case_count() == 0


def test_an_unreachable_ivr_still_ends_the_call(sink: CollectingSink) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        nobody = closed.getsockname()[:2]
    with PbxSimulator(agi=nobody) as sim:
        client, _ = build_client(fast_settings(sim.port), sink)
        with running(client):
            sim.place_calls([SimulatedCall("0910000001")])
            [call] = sink.wait_for(1)
    assert call.abandoned and call.hangup_cause == 16


def test_the_fastagi_server_must_be_on_loopback_too() -> None:
    with pytest.raises(ValueError, match="loopback"):
        PbxSimulator(agi=("192.0.2.1", 4573))


@pytest.mark.parametrize("answers", [True, False])
def test_option_0_goes_through_the_agent_queue_as_on_asterisk(
    ivr: AgiServer, sink: CollectingSink, answers: bool
) -> None:
    # As in tests/fixtures/ami/outcome/agent-*.server.raw: the member's Local channels join the
    # caller's call, and only an answer brings AgentConnect.
    with PbxSimulator(agi=ivr.address) as sim:
        client, _ = build_client(fast_settings(sim.port), sink)
        with running(client):
            sim.place_calls([SimulatedCall("0910000001", choice="0", agent_answers=answers)])
            [call] = sink.wait_for(1)
            assert sim.wait_until_idle(10)
    assert len(call.channels) == 4
    assert call.agent_answered is answers
    if not answers:
        assert call.abandoned
