"""The call tracker on its own: events in, one TrackedCall per Linkedid out."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hotline.ami_protocol import AmiMessage, ParseStats, iter_messages
from hotline.runners import replay
from hotline.simulator.script import (
    CallIds,
    ChannelRegistry,
    SimChannel,
    SimulatedCall,
    agent_queue,
    callback_call,
    core_show_channel,
    hotline_call,
)
from hotline.tracker import (
    MAX_CHANNELS_PER_CALL,
    MAX_CHOICES_PER_CALL,
    CallTracker,
    ChannelSnapshot,
    TrackedCall,
    TrackerRules,
    channels_from_snapshot,
)
from tests.hotline.conftest import FIXTURES, CollectingSink

RECORDING = (FIXTURES / "one-call.server.raw").read_bytes()
T0 = datetime(2026, 11, 22, 18, 9, 36, tzinfo=UTC)


def test_the_fixture_call_is_one_call_with_everything_the_issue_asks_for() -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink)
    stats = replay(RECORDING, tracker, received_at=T0)
    assert stats.warnings == 0
    [call] = sink.calls
    assert call.linkedid == "1795370976.8"
    assert call.channels == ("1795370976.8", "1795370976.9")
    assert call.caller_number == "0510000001"
    assert call.caller_name == "Test Caller 1"
    assert call.did == "15654"
    assert call.recording_path == "/var/spool/asterisk-test/recordings/hotline-1795370976.9.wav"
    assert call.case_reference == "HL-1795370976.9"
    assert call.uniqueid == "1795370976.9"
    assert call.ivr_choices == ("HotlineMenu=1",)
    assert (call.hangup_cause, call.hangup_cause_text) == (16, "Normal Clearing")
    assert call.answered_at == T0
    assert call.duration_seconds == 0.0  # every event had the same arrival time here
    assert not call.abandoned
    assert call.status == "complete"
    assert not call.gap
    assert tracker.live_calls() == []


def test_times_come_from_arrival_and_the_last_hangup_ends_the_call() -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink)
    messages = list(iter_messages(RECORDING, expect_banner=True, stats=ParseStats()))
    for second, message in enumerate(messages):
        tracker.on_event(message, T0 + timedelta(seconds=second))
    [call] = sink.calls
    last_hangup = max(i for i, m in enumerate(messages) if m.name == "Hangup")
    assert call.ended_at == T0 + timedelta(seconds=last_hangup)
    first_newchannel = next(i for i, m in enumerate(messages) if m.name == "Newchannel")
    assert call.started_at == T0 + timedelta(seconds=first_newchannel)
    assert call.duration_seconds == last_hangup - first_newchannel


def simulated_events(call: SimulatedCall, seed: int = 0) -> list[AmiMessage]:
    registry = ChannelRegistry()
    ids = CallIds(7, "1795370000.14", "1795370000.15")
    script = hotline_call(
        call, ids, registry, Path("/rec"), lambda path, c: None, random.Random(seed)
    )
    return [AmiMessage(tuple(headers)) for headers in script]


def test_a_caller_who_hangs_up_before_the_case_is_an_abandoned_call() -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink)
    for message in simulated_events(SimulatedCall("0920000000", register_case=False)):
        tracker.on_event(message, T0)
    [call] = sink.calls
    assert call.abandoned
    assert call.status == "abandoned"
    assert call.caller_number == "0920000000"
    assert call.recording_path is None


def test_message_file_choices_and_case_from_a_simulated_call() -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink, TrackerRules(choice_variables=frozenset({"CHOICE"})))
    for message in simulated_events(SimulatedCall("0910000000", choice="3")):
        tracker.on_event(message, T0)
    [call] = sink.calls
    assert call.message_path == "/rec/message-1795370000.15.wav"
    assert call.recording_path == "/rec/hotline-1795370000.14-1795370000.15.wav"
    # The VarSet and the UserEvent report the same choice: kept once.
    assert call.ivr_choices == ("HotlineMenu=3",)
    assert call.outcome == "registered"
    assert call.case_reference == "HL-1795370000.15"


def test_late_events_never_bring_a_finished_call_back() -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink)
    messages = simulated_events(SimulatedCall("0910000000"))
    for message in messages + messages:  # everything again, after the call ended
        tracker.on_event(message, T0)
    assert len(sink.calls) == 1
    assert tracker.live_calls() == []


def test_live_calls_show_a_call_in_progress() -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink)
    messages = simulated_events(SimulatedCall("0910000000"))
    for message in messages[:12]:
        tracker.on_event(message, T0)
    [live] = tracker.live_calls()
    assert live.status == "live"
    assert live.caller_number == "0910000000"
    assert live.ended_at is None
    assert sink.calls == []


def test_calls_that_never_reach_the_hotline_are_not_reported() -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink)
    ids = CallIds(9, "1795370000.20", "1795370000.21")

    def callback() -> list[AmiMessage]:
        script = callback_call(
            "201",
            ids,
            ChannelRegistry(),
            "orig-9",
            context="hotline-callback",
            customer="0510000001",
            dial_status="ANSWER",
            record=lambda _: lambda: None,
        )
        return [AmiMessage(tuple(step)) for step in script if isinstance(step, list)]

    for message in callback():
        tracker.on_event(message, T0)
    assert sink.calls == []
    assert tracker.stats.calls_not_hotline == 1
    everything = CallTracker(sink, TrackerRules(hotline_exten=None))
    for message in callback():
        everything.on_event(message, T0)
    assert [c.did for c in sink.calls] == ["201"]


def snapshot_items(registry: ChannelRegistry) -> list[AmiMessage]:
    return [
        AmiMessage(tuple(core_show_channel(channel, "coreshowchannels-2")))
        for channel in registry.channels.values()
    ]


def test_resync_adopts_a_call_whose_start_was_missed_and_sweeps_one_that_ended() -> None:
    registry = ChannelRegistry()
    script = hotline_call(
        SimulatedCall("0920000001"),
        CallIds(3, "1795370000.6", "1795370000.7"),
        registry,
        Path("/rec"),
        lambda p, c: None,
        random.Random(1),
    )
    # The listener connects in mid-call, after the recording started: every event so far is
    # lost to it, and only the channel list tells what is going on.
    for headers in script:
        if ("Variable", "MIXMONITOR_FILENAME") in headers:
            break
    sink = CollectingSink()
    tracker = CallTracker(sink)
    tracker.on_channels(snapshot_items(registry), T0)
    [live] = tracker.live_calls()
    assert live.caller_number == "0920000001"
    assert live.recording_path == "/rec/hotline-1795370000.6-1795370000.7.wav"
    assert live.answered_at == T0
    assert live.started_at == T0 - timedelta(seconds=5)  # the snapshot's Duration: 00:00:05
    # The connection drops again; the call ends unseen; the next snapshot is empty.
    tracker.on_channels([], T0 + timedelta(seconds=30))
    [call] = sink.calls
    assert call.gap
    assert call.ended_at == T0 + timedelta(seconds=30)
    assert call.hangup_cause is None
    assert call.case_reference == "HL-1795370000.7"
    assert tracker.stats.channels_swept == 2


def test_snapshot_items_without_ids_are_skipped() -> None:
    items = [AmiMessage((("Event", "CoreShowChannel"), ("Channel", "SIP/x")))]
    assert channels_from_snapshot(items) == []


def test_cdr_maps_by_uniqueid_and_fills_a_missing_caller() -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink)
    channel = (("Channel", "SIP/trunk-1"), ("Uniqueid", "5.1"), ("Linkedid", "5.1"))
    tracker.on_event(AmiMessage((("Event", "Newchannel"), *channel, ("Exten", "15654"))), T0)
    cdr = (("Event", "Cdr"), ("Source", "0910000009"), ("UniqueID", "5.1"))
    tracker.on_event(AmiMessage(cdr), T0)
    tracker.on_event(AmiMessage((("Event", "Hangup"), *channel, ("Cause", "17"))), T0)
    [call] = sink.calls
    assert call.caller_number == "0910000009"
    assert call.hangup_cause == 17


class ProgressSink:
    """Keeps every report in order: notes, finishes and resync verdicts."""

    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []

    def call_noted(self, call: TrackedCall) -> None:
        self.log.append(("noted", call.linkedid))

    def call_finished(self, call: TrackedCall) -> None:
        self.log.append(("finished", call.linkedid))

    def calls_alive(self, linkedids: set[str], at: datetime) -> None:
        self.log.append(("alive", sorted(linkedids)))


def hangup(uniqueid: str, linkedid: str, *variables: str) -> AmiMessage:
    return AmiMessage(
        (
            ("Event", "Hangup"),
            ("Channel", "Local/15654@hotline-00000001;2"),
            ("Context", "hotline"),
            ("Exten", "h"),
            ("Uniqueid", uniqueid),
            ("Linkedid", linkedid),
            ("Cause", "16"),
            *(("ChanVariable", variable) for variable in variables),
        )
    )


def test_a_call_adopted_in_its_hangup_extension_is_still_a_hotline_call() -> None:
    """After a restart, a call whose hotline half is already running the h extension shows
    no 15654; its case variable says it is the hotline's, so it is finished, not dropped."""
    sink = ProgressSink()
    tracker = CallTracker(sink)
    case = "HOTLINE_CASE=123456789"
    snapshot = ChannelSnapshot(
        "1795.2",
        "1795.1",
        "Local/15654@hotline-00000001;2",
        "0910000001",
        None,
        "h",
        True,
        {"HOTLINE_CASE": "123456789", "MIXMONITOR_FILENAME": "/r/hotline-1795.2.wav"},
    )
    tracker.resync([snapshot], T0)
    tracker.on_event(hangup("1795.2", "1795.1", case), T0)
    assert sink.log == [("noted", "1795.1"), ("alive", ["1795.1"]), ("finished", "1795.1")]
    assert tracker.stats.calls_not_hotline == 0


def test_an_adopted_call_that_ends_unrecognised_lets_the_store_close_it() -> None:
    """An abandoned caller adopted in the h extension carries no case: the tracker cannot tell
    it was a hotline call, so it says which calls are alive and the store closes the row a
    listener before it noted."""
    sink = ProgressSink()
    tracker = CallTracker(sink)
    snapshot = ChannelSnapshot(
        "1795.4", "1795.3", "Local/15654@hotline-00000002;2", "0910000002", None, "h", True, {}
    )
    tracker.resync([snapshot], T0)
    tracker.on_event(hangup("1795.4", "1795.3"), T0)
    assert sink.log == [("alive", ["1795.3"]), ("alive", [])]


OUTCOME_RULES = TrackerRules(choice_variables=frozenset({"HOTLINE_CHOICES"}))


@pytest.mark.parametrize(
    ("capture", "outcome", "agent_answered", "abandoned"),
    [
        ("status", "status", False, False),
        ("agent-answered", "agent", True, False),
        ("agent-unanswered", "agent", False, True),
        ("abandoned", None, False, True),
    ],
)
def test_abandoned_means_hung_up_before_being_served_on_real_asterisk_bytes(
    capture: str, outcome: str | None, agent_answered: bool, abandoned: bool
) -> None:
    # Captured from Asterisk 22.10.1 (tests/fixtures/ami/outcome/README.md): a status enquiry
    # answered and a caller an agent took are served; a queue nobody answered is not.
    sink = CollectingSink()
    data = (FIXTURES / "outcome" / f"{capture}.server.raw").read_bytes()
    stats = replay(data, CallTracker(sink, OUTCOME_RULES), received_at=T0)
    assert stats.warnings == 0
    [call] = sink.calls
    assert call.caller_number == "0910000001"
    assert (call.outcome, call.agent_answered) == (outcome, agent_answered)
    assert call.abandoned is abandoned
    assert call.status == ("abandoned" if abandoned else "complete")
    assert call.ivr_choices == (() if outcome is None else ("HOTLINE_CHOICES=2",))


def _event(name: str, *headers: tuple[str, str]) -> AmiMessage:
    ids = (("Channel", "Local/15654@hotline-00000001;2"), ("Uniqueid", "1.2"), ("Linkedid", "1.1"))
    return AmiMessage((("Event", name), *ids, *headers))


def test_a_caller_an_agent_answered_is_served_even_without_an_outcome() -> None:
    # The IVR could not be reached (AGISTATUS FAILURE): the dialplan queues the caller.
    sink = CollectingSink()
    tracker = CallTracker(sink)
    for message in (
        _event("Newexten", ("Exten", "15654")),
        _event("AgentConnect", ("Queue", "hotline-agents")),
        _event("Hangup", ("Cause", "16")),
    ):
        tracker.on_event(message, T0)
    [call] = sink.calls
    assert call.outcome is None and call.agent_answered and not call.abandoned


def test_choices_from_the_variable_and_user_events_merge_without_duplicates() -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink, OUTCOME_RULES)
    # The listener came back after the main-menu choice: only the variable still knows it.
    events = [
        _event("Newexten", ("Exten", "15654")),
        _event("VarSet", ("Variable", "HOTLINE_CHOICES"), ("Value", "main_menu:1")),
        _event("VarSet", ("Variable", "HOTLINE_CHOICES"), ("Value", "main_menu:1,category_menu:3")),
        _event("UserEvent", ("UserEvent", "HotlineMenu"), ("Choice", "category_menu:3")),
        _event(
            "VarSet",
            ("Variable", "HOTLINE_CHOICES"),
            ("Value", "main_menu:1,category_menu:3,rating:2"),
        ),
        _event("UserEvent", ("UserEvent", "HotlineMenu"), ("Choice", "rating:2")),
        _event("Hangup", ("Cause", "16")),
    ]
    for message in events:
        tracker.on_event(message, T0)
    [call] = sink.calls
    assert call.ivr_choices == (
        "HOTLINE_CHOICES=main_menu:1",
        "HotlineMenu=category_menu:3",
        "HotlineMenu=rating:2",
    )


def test_the_simulators_agent_connect_has_the_real_ones_headers() -> None:
    real_bytes = (FIXTURES / "outcome" / "agent-answered.server.raw").read_bytes()
    messages = iter_messages(real_bytes, expect_banner=True, stats=ParseStats())
    real = next(m for m in messages if m.name == "AgentConnect")
    two = SimChannel("Local/15654@hotline-00000001;2", "1.2", "1.1", "hotline", "15654")
    queue = agent_queue(two, CallIds(2, "1.3", "1.4"), ChannelRegistry(), answers=True)
    simulated = next(AmiMessage(tuple(h)) for h in queue if ("Event", "AgentConnect") in h)
    assert [key for key, _ in simulated.headers] == [key for key, _ in real.headers]
    assert simulated.get("DestLinkedid") == simulated.get("Linkedid") == "1.1"


def test_an_outcome_set_while_the_listener_was_away_is_read_from_the_hangup() -> None:
    # No VarSet of HOTLINE_OUTCOME reached us (a gap): the hotline channel's Hangup still
    # carries the variable (manager.conf channelvars), and that is where it is read.
    sink = CollectingSink()
    tracker = CallTracker(sink, OUTCOME_RULES)
    case = ("ChanVariable", "HOTLINE_CASE=")
    for message in (
        _event("Newexten", ("Exten", "15654"), case, ("ChanVariable", "HOTLINE_OUTCOME=")),
        _event("Newexten", ("Exten", "s"), case, ("ChanVariable", "HOTLINE_OUTCOME=")),
        _event("Hangup", ("Cause", "16"), case, ("ChanVariable", "HOTLINE_OUTCOME=status")),
    ):
        tracker.on_event(message, T0)
    [call] = sink.calls
    assert call.outcome == "status" and not call.abandoned


def _channel_event(
    name: str, linkedid: str, uniqueid: str, *headers: tuple[str, str]
) -> AmiMessage:
    channel = ("Channel", f"Local/15654@hotline-{uniqueid};2")
    ids = (("Uniqueid", uniqueid), ("Linkedid", linkedid))
    return AmiMessage((("Event", name), channel, *ids, *headers))


def test_a_flood_of_calls_that_never_end_stops_at_the_cap_and_loses_no_tracked_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink, max_live_calls=100)
    # The first call is a real one; then 1,000 calls that never hang up.
    tracker.on_event(_channel_event("Newchannel", "1.0", "1.0", ("Exten", "15654")), T0)
    for n in range(1, 1001):
        tracker.on_event(_channel_event("Newchannel", f"2.{n}", f"2.{n}", ("Exten", "15654")), T0)
    assert len(tracker.live_calls()) == 100
    assert tracker.stats.calls_refused == 901
    warnings = [r for r in caplog.records if "max_live_calls" in r.getMessage()]
    assert len(warnings) == 1  # said once, not per refused call
    # The call tracked before the flood is still followed to its end and reported.
    tracker.on_event(_channel_event("Hangup", "1.0", "1.0", ("Cause", "16")), T0)
    assert [call.linkedid for call in sink.calls] == ["1.0"]
    # A refused call stays refused to its end, even once there is room again.
    tracker.on_event(_channel_event("Hangup", "2.1000", "2.1000", ("Cause", "16")), T0)
    assert [call.linkedid for call in sink.calls] == ["1.0"]


def test_one_call_cannot_grow_without_bound() -> None:
    sink = CollectingSink()
    tracker = CallTracker(sink, OUTCOME_RULES)
    tracker.on_event(_channel_event("Newchannel", "1.0", "1.0", ("Exten", "15654")), T0)
    for n in range(1, 1000):
        tracker.on_event(_channel_event("Newchannel", "1.0", f"1.{n}"), T0)
        menu = (("UserEvent", "HotlineMenu"), ("Choice", str(n % 10)))
        tracker.on_event(_channel_event("UserEvent", "1.0", "1.0", *menu), T0)
    long = ",".join(["1"] * 5000)
    tracker.on_event(
        _channel_event("VarSet", "1.0", "1.0", ("Variable", "HOTLINE_CHOICES"), ("Value", long)), T0
    )
    [live] = tracker.live_calls()
    assert len(live.channels) == MAX_CHANNELS_PER_CALL
    assert len(live.ivr_choices) == MAX_CHOICES_PER_CALL
    assert tracker.stats.ignored_growth > 0
