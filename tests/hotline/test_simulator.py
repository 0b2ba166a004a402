"""The PBX simulator and the listener together: many calls, drops, garbage, restarts."""

from __future__ import annotations

import socket
import wave
from pathlib import Path

import pytest

from hotline.ami_protocol import AmiFramer, AmiMessage
from hotline.runners import build_client
from hotline.simulator import PbxSimulator, SimulatedCall
from hotline.simulator.audio import read_pcm, tone, write_wav
from hotline.tracker import TrackedCall
from tests.hotline.conftest import PATIENCE, CollectingSink, fast_settings, running, wait_until

CALLS = 200


def callers(count: int) -> list[SimulatedCall]:
    # Every tenth caller gives up before the complaint is registered.
    return [
        SimulatedCall(f"0910{n:06d}", caller_name="مواطن", register_case=n % 10 != 0)
        for n in range(count)
    ]


def run_calls(
    sim: PbxSimulator, sink: CollectingSink, count: int
) -> tuple[list[TrackedCall], list[str]]:
    client, tracker = build_client(fast_settings(sim.port), sink)
    with running(client):
        linkedids = sim.place_calls(callers(count))
        assert sim.wait_until_idle(PATIENCE)
        calls = sink.wait_for(count)
    assert tracker.live_calls() == []
    return calls, linkedids


def assert_each_call_once(calls: list[TrackedCall], linkedids: list[str]) -> None:
    assert len(calls) == len(linkedids)
    assert sorted(c.linkedid for c in calls) == sorted(linkedids)
    by_number = {c.caller_number: c for c in calls}
    assert len(by_number) == len(calls)
    for n in range(len(calls)):
        call = by_number[f"0910{n:06d}"]
        assert call.abandoned == (n % 10 == 0)
        assert call.did == "15654"
        if not call.abandoned:
            assert call.recording_path is not None
            assert call.recording_path.endswith(f"hotline-{call.linkedid}-{call.uniqueid}.wav")


def test_200_concurrent_calls_are_200_tracked_calls(tmp_path: Path, sink: CollectingSink) -> None:
    with PbxSimulator(seed=11, recordings_dir=tmp_path) as sim:
        calls, linkedids = run_calls(sim, sink, CALLS)
    assert_each_call_once(calls, linkedids)
    assert not any(c.gap for c in calls)
    assert all(c.hangup_cause == 16 and c.answered_at is not None for c in calls)
    assert {c.caller_name for c in calls} == {"مواطن"}
    recorded = [c for c in calls if c.recording_path]
    for call in recorded[:5]:
        with wave.open(str(call.recording_path), "rb") as wav:
            assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        assert call.message_path is not None
        assert Path(call.message_path).exists()
    assert len(list(tmp_path.glob("hotline-*.wav"))) == len(recorded)


def test_five_dropped_connections_still_give_200_calls(sink: CollectingSink) -> None:
    with PbxSimulator(seed=12) as sim:
        sim.schedule_drops([800, 1600, 2400, 3200, 4000], gap_events=60)
        calls, linkedids = run_calls(sim, sink, CALLS)
        assert sim.stats.logins == 6
        assert sim.stats.events_lost > 5 * 50  # a gap step may end a call instead of sending
    assert_each_call_once(calls, linkedids)
    assert any(c.gap for c in calls)  # some calls ended while the listener was away


def test_1000_malformed_blocks_change_nothing_but_a_counter(sink: CollectingSink) -> None:
    with PbxSimulator(seed=13) as sim:
        sim.inject_malformed(1000)
        client, _ = build_client(fast_settings(sim.port), sink)
        with running(client):
            linkedids = sim.place_calls(callers(CALLS))
            assert sim.wait_until_idle(PATIENCE)
            calls = sink.wait_for(CALLS)
        assert sim.stats.malformed_sent == 1000
    assert_each_call_once(calls, linkedids)
    assert client.stats.warnings >= 1000
    assert client.stats.handler_errors == 0


def test_invalid_utf8_in_a_caller_name_does_not_lose_the_call(sink: CollectingSink) -> None:
    with PbxSimulator(seed=14) as sim:
        client, _ = build_client(fast_settings(sim.port), sink)
        with running(client):
            sim.place_calls([SimulatedCall("0910000001", caller_name="bad \udcff\udcfe name")])
            [call] = sink.wait_for(1)
    assert call.caller_number == "0910000001"
    assert call.caller_name == "bad \ufffd\ufffd name"
    assert client.stats.undecodable_blocks > 0


def test_a_restart_that_kills_calls_still_reports_them_once(sink: CollectingSink) -> None:
    with PbxSimulator(seed=15) as sim:
        client, tracker = build_client(fast_settings(sim.port), sink)
        with running(client):
            sim.pause_after(60)  # mid-call for everyone: nobody has hung up yet
            sim.place_calls(callers(10))
            assert sim.wait_until_idle(PATIENCE)
            started = sim.live_linkedids()
            assert started
            assert wait_until(lambda: {c.linkedid for c in tracker.live_calls()} == started)
            sim.restart(keep_calls=False)  # the calls die with Asterisk: no Hangup events
            sim.resume()
            calls = sink.wait_for(len(started))
            assert tracker.live_calls() == []
    assert {c.linkedid for c in calls} == started
    assert len(calls) == len(started)
    assert all(c.gap and c.hangup_cause is None for c in calls)


def test_the_wire_matches_real_asterisk_byte_for_byte() -> None:
    with PbxSimulator() as sim, socket.create_connection(("127.0.0.1", sim.port)) as sock:
        sock.settimeout(PATIENCE)
        login = (
            b"Action: Login\r\nActionID: login-1\r\nUsername: hotline\r\n"
            b"Secret: hotline-secret\r\nEvents: on\r\n\r\n"
        )
        sock.sendall(login)
        framer = AmiFramer(expect_banner=True)
        received = b""
        messages: list[AmiMessage] = []
        while len(messages) < 3:
            data = sock.recv(4096)
            received += data
            messages += framer.feed(data)
    assert received.startswith(b"Asterisk Call Manager/11.0.0\r\n")
    assert received[30:].startswith(
        b"Response: Success\r\nActionID: login-1\r\nMessage: Authentication accepted\r\n\r\n"
        b"Event: FullyBooted\r\nPrivilege: system,all\r\n"
    )
    assert [m.name for m in messages] == ["Success", "FullyBooted", "SuccessfulAuth"]


def test_supplied_audio_is_what_the_recording_holds(tmp_path: Path, sink: CollectingSink) -> None:
    voice = tone(0.25, 300.0, seed=3)
    with PbxSimulator(recordings_dir=tmp_path / "rec") as sim:
        client, _ = build_client(fast_settings(sim.port), sink)
        with running(client):
            sim.place_calls([SimulatedCall("0910000001", audio=voice)])
            [call] = sink.wait_for(1)
    assert call.recording_path is not None
    with wave.open(call.recording_path, "rb") as wav:
        assert wav.readframes(wav.getnframes()) == voice


def test_caller_audio_can_be_a_wav_file_of_the_telephone_shape(tmp_path: Path) -> None:
    good, wide = tmp_path / "good.wav", tmp_path / "wide.wav"
    write_wav(good, tone(0.1))
    with wave.open(str(wide), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(tone(0.1))
    assert read_pcm(good) == tone(0.1)
    with pytest.raises(ValueError, match="need 8 kHz 16-bit mono"):
        read_pcm(wide)
