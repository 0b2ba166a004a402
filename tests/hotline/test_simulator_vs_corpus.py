"""The PBX simulator checked against the real Asterisk 22 captures of the corpus: for each
scenario the simulator can play, the tracker and the callback dialler must read the same from
both. What still differs (events, headers, ordering) is what ``differences`` lists; the README's
real-PBX section names it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotline.ami_protocol import AmiMessage
from hotline.app.config import Settings
from hotline.app.dial import OriginateWatch
from hotline.simulator import PbxSimulator, SimulatedCall
from hotline.tracker import CallTracker, TrackerRules
from ivr_flows.server import AgiServer
from tests.hotline.corpus import EPOCH, Names, Reporter, Scenario, replay_dial, replay_tracker
from tests.hotline.simulator_profile import Profile
from tests.ivr_flows.memory_backend import MemoryBackend
from tests.pbx.site import SPEECH, AmiDriver

SETTINGS = Settings()
# The filters of the capture session (tests/pbx/site.py Site.driver).
FILTERS = [*SETTINGS.ami.event_filters, "Event: DialBegin", "Event: DialEnd"]
PATIENCE = 30.0

HOTLINE_CALLS = {
    "new-complaint": SimulatedCall("0911000001", choice="1", category="2", audio=SPEECH),
    "abandoned": SimulatedCall("0911000005", register_case=False),
}
# Customer number and what the simulator's trunk answers (real: contexts.conf's [default]).
CALLBACKS = {
    "callback-answered": ("0911000101", "ANSWER"),
    "callback-busy": ("0921000102", "BUSY"),
    "callback-unanswered": ("0931000103", "NOANSWER"),
}


@contextlib.contextmanager
def simulated(
    root: Path, outcomes: dict[str, str] | None = None
) -> Iterator[tuple[PbxSimulator, AmiDriver]]:
    """A simulator handing its calls to the real FastAGI IVR, and a capture session on it."""
    settings = Settings()
    settings.recordings.root = root
    settings.agi.host = "127.0.0.1"
    with (
        AgiServer(settings, MemoryBackend(), port=0) as ivr,
        PbxSimulator(seed=5, recordings_dir=root, agi=ivr.address, dial_outcomes=outcomes) as sim,
    ):
        driver = AmiDriver(sim.port, sim.secret, FILTERS, user=sim.username)
        try:
            yield sim, driver
        finally:
            driver.close()


def captured(sim: PbxSimulator, driver: AmiDriver) -> list[AmiMessage]:
    """Every event the session received, once each channel's Hangup has arrived."""
    assert sim.wait_until_idle(PATIENCE)

    def over(_: AmiMessage) -> bool:
        names = [block.message.name for block in driver.blocks]
        return names.count("Hangup") >= names.count("Newchannel") > 0

    assert driver.wait_for(over, PATIENCE)
    return [block.message for block in driver.blocks]


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


def outcome(messages: list[AmiMessage], root: str) -> list[dict[str, Any]]:
    """The finished calls as the tracker reports them, without what differs by nature (ids,
    times): who called, how it ended, what the IVR registered and recorded, the choices."""
    reporter = Reporter(Names(root))
    tracker = CallTracker(reporter, TrackerRules.from_settings(SETTINGS.ami))
    for message in messages:
        tracker.on_event(message, EPOCH)
    return [essentials(report["finished"]) for report in reporter.seen if "finished" in report]


def essentials(call: dict[str, Any]) -> dict[str, Any]:
    hotline = call["uniqueid"]
    return {
        "caller_number": call["caller_number"],
        "caller_name": call["caller_name"],
        "did": call["did"],
        "channels": len(call["channels"]),
        "hangup_cause": call["hangup_cause"],
        "hangup_cause_text": call["hangup_cause_text"],
        "has_case": call["case"] is not None,
        "recording_of_the_hotline_channel": call["recording"]
        == f"<recordings>/hotline-{call['linkedid']}-{hotline}.wav",
        "message_of_the_hotline_channel": call["message"] == f"<recordings>/message-{hotline}.wav",
        "ivr_choices": call["ivr_choices"],
        "status": call["status"],
    }


def real_messages(scenario: Scenario) -> Iterator[AmiMessage]:
    return (message for _, message in scenario.messages())


@pytest.mark.parametrize("name", sorted(HOTLINE_CALLS))
def test_the_tracker_reads_the_same_call_from_the_simulator(name: str, recordings: Path) -> None:
    real = Scenario.load(name)
    with simulated(recordings) as (sim, driver):
        sim.place_calls([HOTLINE_CALLS[name]])
        messages = captured(sim, driver)
    expected = [
        essentials(report["finished"])
        for report in replay_tracker(real, SETTINGS)
        if "finished" in report
    ]
    assert outcome(messages, str(recordings)) == expected
    # Each event both send carries the headers the tracker reads, in both.
    real_profile = Profile.of(real_messages(real), SETTINGS.ami)
    simulated_profile = Profile.of(messages, SETTINGS.ami)
    for event in real_profile.headers.keys() & simulated_profile.headers.keys():
        assert real_profile.headers[event] == simulated_profile.headers[event], event
    # And what the tracker acts on comes in the same order (who hangs up first included), but
    # for Cdr, which lands before or after its Hangup between real runs, and the capture
    # driver's own Originate of the caller.
    assert tracked_steps(simulated_profile) == tracked_steps(real_profile)


def tracked_steps(profile: Profile) -> list[str]:
    return [
        step for step in profile.steps if step != "Cdr" and not step.startswith("OriginateResponse")
    ]


@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_the_dialler_reads_the_same_result_from_the_simulator(name: str, recordings: Path) -> None:
    customer, answer = CALLBACKS[name]
    with simulated(recordings, {customer: answer}) as (sim, driver):
        response = driver.originate(
            "Local/201@pbx-agents", "hotline-callback", customer, "15654", {"HOTLINE_CALLBACK": "1"}
        ).result(PATIENCE)
        messages = captured(sim, driver)
    watch = OriginateWatch()
    watch.follow(response.action_id or "")
    for message in messages:
        watch.on_event(message, EPOCH)
    real = replay_dial(Scenario.load(name))
    assert real is not None
    assert str(watch.result) == real["result"]
