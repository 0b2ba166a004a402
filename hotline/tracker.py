"""The call tracker: a pure state machine folding AMI events into one call per Linkedid.

No sockets, no database (cacofonisk's "handler"): a runner feeds it parsed ``AmiMessage``s with
the time they arrived, and a ``CallSink`` receives each ``TrackedCall`` once all of its channels
have hung up. A call through a Local channel has two halves (``;1``, ``;2``), each with its own
Uniqueid and one shared Linkedid; ``Cdr`` (``UniqueID``) and ``OriginateResponse`` carry no
Linkedid and are mapped through the Uniqueid.

After a reconnect the events of the gap are lost; ``resync`` takes a ``CoreShowChannels``
snapshot: channels it shows are adopted, tracked channels it no longer shows hung up in the gap.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from casebook.call_status import call_status
from hotline.ami_protocol import AmiMessage
from hotline.ami_settings import AmiSettings

log = logging.getLogger(__name__)

UNKNOWN_CALLER = "<unknown>"
CHANNEL_UP = "6"
# Linkedids of finished calls remembered so that a late event cannot start the call again.
FINISHED_MEMORY = 50_000
# Per-call bounds: a real call has a handful of channels and menu choices. Beyond these, a
# broken or hostile dialplan is feeding us, and the extras are ignored (counted in stats).
MAX_CHANNELS_PER_CALL = 64
MAX_CHOICES_PER_CALL = 64
# A stored value (case, recording path, outcome, choices…) longer than this is not one of ours.
MAX_VALUE_CHARS = 1024
# HOTLINE_OUTCOME: the IVR served the caller; "agent" serves only once an agent answers.
OUTCOME_AGENT = "agent"


@dataclass(frozen=True)
class TrackedCall:
    """One call as the hotline saw it (field names follow ``casebook.models.Call``)."""

    linkedid: str
    # The channel that ran the hotline dialplan (recording, case), else the first channel.
    uniqueid: str
    caller_number: str | None
    caller_name: str | None
    did: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_cause: int | None
    hangup_cause_text: str | None
    case_reference: str | None
    recording_path: str | None
    message_path: str | None
    ivr_choices: tuple[str, ...]
    channels: tuple[str, ...]
    # Part of the call fell into a connection gap: times and hangup cause may be approximate.
    gap: bool = False
    # What the IVR says it did for the caller (ami.outcome_variable): registered, status, agent.
    outcome: str | None = None
    # A queue member answered (AgentConnect).
    agent_answered: bool = False

    @property
    def abandoned(self) -> bool:
        """Hung up before being served: no case, no agent answered, and the IVR said nothing
        or only that it handed the caller to the agent queue. (An agent answering serves the
        caller also when the IVR failed and the dialplan sent them to the queue.)"""
        if self.case_reference is not None or self.agent_answered:
            return False
        return self.outcome is None or self.outcome == OUTCOME_AGENT

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def status(self) -> str:
        return call_status(self.ended_at, self.abandoned)


class CallSink(Protocol):
    def call_noted(self, call: TrackedCall) -> None:
        """A call in progress reached the hotline, or named its recording: noted at once, so a
        gap in the listener cannot lose it."""
        ...

    def call_finished(self, call: TrackedCall) -> None: ...

    def calls_alive(self, linkedids: set[str], at: datetime) -> None:
        """After a resync: every call not in ``linkedids`` has ended, whoever noted it."""
        ...


class FinishedCallsOnly:
    """A base for sinks that want finished calls only (tests, the bench)."""

    def call_noted(self, call: TrackedCall) -> None:
        del call

    def calls_alive(self, linkedids: set[str], at: datetime) -> None:
        del linkedids, at


@dataclass(frozen=True)
class TrackerRules:
    """What the dialplan and IVR tell the tracker through channel variables and UserEvents."""

    hotline_exten: str | None = "15654"  # None: report every call, not only hotline calls
    case_variable: str = "HOTLINE_CASE"
    recording_variable: str = "MIXMONITOR_FILENAME"
    outcome_variable: str = "HOTLINE_OUTCOME"
    menu_user_events: frozenset[str] = frozenset({"HotlineMenu"})
    choice_variables: frozenset[str] = frozenset()
    message_user_event: str = "HotlineMessage"

    @classmethod
    def from_settings(cls, ami: AmiSettings) -> TrackerRules:
        return cls(
            hotline_exten=ami.hotline_exten,
            case_variable=ami.case_variable,
            recording_variable=ami.recording_variable,
            outcome_variable=ami.outcome_variable,
            menu_user_events=frozenset(ami.menu_user_events),
            choice_variables=frozenset(ami.choice_variables),
            message_user_event=ami.message_user_event,
        )


@dataclass(frozen=True)
class ChannelSnapshot:
    """One live channel as ``CoreShowChannels`` lists it."""

    uniqueid: str
    linkedid: str
    channel: str
    caller_number: str | None
    caller_name: str | None
    exten: str | None
    up: bool
    variables: dict[str, str]
    # How long the channel has existed (``Duration: HH:MM:SS``), when Asterisk says.
    age: timedelta | None = None


def channels_from_snapshot(items: Iterable[AmiMessage]) -> list[ChannelSnapshot]:
    """``CoreShowChannel`` list items -> channel snapshots (items missing ids are skipped)."""
    snapshots = []
    for item in items:
        uniqueid, linkedid = item.get("Uniqueid"), item.get("Linkedid")
        if not uniqueid or not linkedid:
            continue
        snapshots.append(
            ChannelSnapshot(
                uniqueid=uniqueid,
                linkedid=linkedid,
                channel=item.get("Channel") or "",
                caller_number=_known(item.get("CallerIDNum")),
                caller_name=_known(item.get("CallerIDName")),
                exten=item.get("Exten"),
                up=item.get("ChannelState") == CHANNEL_UP,
                variables=item.variables(),
                age=_duration(item.get("Duration")),
            )
        )
    return snapshots


@dataclass
class _Channel:
    uniqueid: str
    caller_number: str | None = None
    caller_name: str | None = None
    hung_up: bool = False


@dataclass
class _Call:
    linkedid: str
    started_at: datetime
    channels: dict[str, _Channel] = field(default_factory=dict)
    hotline_uniqueid: str | None = None
    did: str | None = None
    reached_hotline: bool = False
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None
    case_reference: str | None = None
    recording_path: str | None = None
    message_path: str | None = None
    ivr_choices: list[str] = field(default_factory=list)
    # The latest value of each choice variable: every choice so far, comma-joined.
    choice_values: dict[str, str] = field(default_factory=dict)
    outcome: str | None = None
    agent_answered: bool = False
    gap: bool = False
    # Adopted from a snapshot: a listener before us may have noted it as a hotline call.
    adopted: bool = False


@dataclass
class TrackerStats:
    calls_started: int = 0
    calls_finished: int = 0
    calls_not_hotline: int = 0
    channels_swept: int = 0
    resyncs: int = 0
    # Calls refused because ``max_live_calls`` were in progress (see ``CallTracker``).
    calls_refused: int = 0
    # Channels, choices or values beyond the per-call bounds, ignored.
    ignored_growth: int = 0


class CallTracker:
    """Events in, finished calls out. Thread-safe: one feeder, any number of readers.

    At most ``max_live_calls`` calls are followed at once. When that many are in progress a
    new call is refused (counted, logged once per episode), not an old one dropped: the calls
    already followed (and noted in the database) keep being followed to their end, so none of
    them is closed early or loses its facts. A refused hotline call is not lost either: its
    case is registered by the IVR, and its recording is recovered once it is quiet
    (``reconcile_recordings``), as after a listener gap.
    """

    def __init__(
        self, sink: CallSink, rules: TrackerRules | None = None, *, max_live_calls: int = 5000
    ) -> None:
        self.rules = rules if rules is not None else TrackerRules()
        self.max_live_calls = max_live_calls
        self.stats = TrackerStats()
        self._sink = sink
        self._calls: dict[str, _Call] = {}
        self._call_of_channel: dict[str, str] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._noted: list[str] = []  # news of calls in progress since the last report
        self._vanished = False  # an adopted call ended unreported: say which calls are alive
        self._full = False  # refusing new calls (logged when it starts and when it ends)
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[_Call, str | None, AmiMessage, datetime], None]] = {
            "Newchannel": self._on_caller_id,
            "NewCallerid": self._on_caller_id,
            "Newstate": self._on_newstate,
            "VarSet": self._on_varset,
            "UserEvent": self._on_user_event,
            "Hangup": self._on_hangup,
            "Cdr": self._on_cdr,
            "AgentConnect": self._on_agent_connect,
        }

    # The runner's side ------------------------------------------------------------------------

    def on_event(self, message: AmiMessage, received_at: datetime) -> None:
        """Fold one event in (``AmiHandler`` interface, so a client can feed the tracker)."""
        if message.kind != "Event":
            return
        with self._lock:
            finished = self._apply(message, received_at)
            noted = self._take_noted()
            vanished, self._vanished = self._vanished, False
            alive = set(self._calls) if vanished else set()
        for call in noted:
            self._sink.call_noted(call)
        if finished is not None:
            self._sink.call_finished(finished)
        if vanished:
            # A call adopted after a gap ended without showing it was a hotline call (its
            # hotline half was already in the h extension): whoever noted it may close it.
            self._sink.calls_alive(alive, received_at)

    def on_channels(self, channels: Sequence[AmiMessage], received_at: datetime) -> None:
        self.resync(channels_from_snapshot(channels), received_at)

    def resync(self, snapshot: Sequence[ChannelSnapshot], at: datetime) -> None:
        """Make the tracker agree with a complete list of the channels alive at ``at``."""
        finished: list[TrackedCall] = []
        with self._lock:
            self.stats.resyncs += 1
            alive = {channel.uniqueid for channel in snapshot}
            for seen in snapshot:
                call = self._call_for(seen.linkedid, seen.uniqueid, at)
                if call is None:
                    continue
                call.adopted = True
                if seen.age is not None:
                    # A call adopted mid-way started when its oldest channel did, not now.
                    call.started_at = min(call.started_at, at - seen.age)
                channel = call.channels[seen.uniqueid]
                channel.caller_number = channel.caller_number or seen.caller_number
                channel.caller_name = channel.caller_name or seen.caller_name
                self._note_exten(call, seen.exten)
                if seen.up and call.answered_at is None:
                    call.answered_at = at
                self._note_variables(call, seen.uniqueid, seen.variables)
            for call in list(self._calls.values()):
                for channel in call.channels.values():
                    if not channel.hung_up and channel.uniqueid not in alive:
                        # Hung up while we were disconnected: its Hangup event is gone.
                        channel.hung_up = True
                        call.gap = True
                        self.stats.channels_swept += 1
                done = self._finish_if_over(call, at)
                if done is not None:
                    finished.append(done)
            noted = self._take_noted()
            # Every call in the snapshot is alive, also one refused at the live-call cap.
            alive = set(self._calls) | {channel.linkedid for channel in snapshot}
        for call_noted in noted:
            self._sink.call_noted(call_noted)
        for call_done in finished:
            self._sink.call_finished(call_done)
        self._sink.calls_alive(alive, at)

    def _take_noted(self) -> list[TrackedCall]:
        """Calls in progress with news since last asked (the caller holds the lock)."""
        if not self._noted:
            return []
        noted = [
            self._freeze(self._calls[i]) for i in dict.fromkeys(self._noted) if i in self._calls
        ]
        self._noted.clear()
        return noted

    # Readers ----------------------------------------------------------------------------------

    def live_calls(self) -> list[TrackedCall]:
        """Calls in progress (status "live"), for ``hotline status``."""
        with self._lock:
            return [self._freeze(call) for call in self._calls.values()]

    # Folding ----------------------------------------------------------------------------------

    def _apply(self, message: AmiMessage, at: datetime) -> TrackedCall | None:
        handler = self._handlers.get(message.name)
        uniqueid = message.get("Uniqueid") or message.get("UniqueID")
        linkedid = message.get("Linkedid")
        if linkedid is not None and uniqueid is not None and message.get("Channel"):
            call = self._call_for(linkedid, uniqueid, at)
        else:
            known = self._call_of_channel.get(uniqueid or "")
            call = self._calls.get(known) if known is not None else None
        if call is None:
            return None
        if message.name in ("Newchannel", "Newexten"):
            self._note_exten(call, message.get("Exten"))
        if (
            call.case_reference is None
            or call.recording_path is None
            or message.name == "Hangup"  # the final values (outcome, choices made in a gap)
        ):
            # manager.conf channelvars: every channel event repeats the variables' values.
            # While connected, VarSet tells every change of the outcome and the choices; a
            # change made in a gap shows at the latest in the hotline channel's Hangup, so
            # other events are not parsed for them (that doubled the tracker's time).
            self._note_variables(call, uniqueid, message.variables())
        if handler is not None:
            handler(call, uniqueid, message, at)
        # Only a Hangup (or a resync) can end a channel, so only then can the call be over.
        return self._finish_if_over(call, at) if message.name == "Hangup" else None

    def _call_for(self, linkedid: str, uniqueid: str, at: datetime) -> _Call | None:
        """The live call of this channel; adopts channels whose Newchannel we missed."""
        call = self._calls.get(linkedid)
        if call is None:
            if linkedid in self._finished:
                return None  # a late event of a call already reported (or refused)
            if len(self._calls) >= self.max_live_calls:
                self._refuse(linkedid)
                return None
            call = self._calls[linkedid] = _Call(linkedid=linkedid, started_at=at)
            self.stats.calls_started += 1
        if uniqueid not in call.channels:
            if uniqueid in self._call_of_channel:
                # Asterisk re-links a bridged channel to the older call's Linkedid; the channel
                # stays with the call it started in, so no call is reported twice.
                return None
            if len(call.channels) >= MAX_CHANNELS_PER_CALL:
                self.stats.ignored_growth += 1
                return None
            call.channels[uniqueid] = _Channel(uniqueid)
            self._call_of_channel[uniqueid] = linkedid
        return call

    def _refuse(self, linkedid: str) -> None:
        """No room for another call: ignore this one to its end (remembered like a finished
        call, so its later events are ignored too)."""
        self.stats.calls_refused += 1
        self._remember_finished(linkedid)
        if not self._full:
            self._full = True
            log.warning(
                "%d calls in progress (ami.max_live_calls): new calls are not tracked until "
                "some end; their recordings are recovered later",
                len(self._calls),
            )

    def _remember_finished(self, linkedid: str) -> None:
        self._finished[linkedid] = None
        if len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

    def _note_exten(self, call: _Call, exten: str | None) -> None:
        if exten and exten not in ("s", "h"):
            if call.did is None:
                call.did = exten
            if exten == self.rules.hotline_exten and not call.reached_hotline:
                call.reached_hotline = True
                self._noted.append(call.linkedid)

    def _note_variables(self, call: _Call, uniqueid: str | None, values: dict[str, str]) -> None:
        rules = self.rules
        if max(map(len, values.values()), default=0) > MAX_VALUE_CHARS:
            self.stats.ignored_growth += 1
            values = {name: v for name, v in values.items() if len(v) <= MAX_VALUE_CHARS}
        outcome = values.get(rules.outcome_variable)
        if outcome:
            call.outcome = outcome
        for name in rules.choice_variables:
            if values.get(name):
                call.choice_values[name] = values[name]
        case = values.get(rules.case_variable)
        if case and call.case_reference is None:
            call.case_reference = case
            call.hotline_uniqueid = call.hotline_uniqueid or uniqueid
            if not call.reached_hotline:
                # Only the hotline's IVR registers cases: proof enough, even for a call first
                # seen in its h extension after a gap.
                call.reached_hotline = True
                self._noted.append(call.linkedid)
        recording = values.get(rules.recording_variable)
        if recording and call.recording_path is None:
            call.recording_path = recording
            call.hotline_uniqueid = uniqueid or call.hotline_uniqueid
            if call.reached_hotline:
                self._noted.append(call.linkedid)

    def _on_caller_id(
        self, call: _Call, uniqueid: str | None, message: AmiMessage, _: datetime
    ) -> None:
        channel = call.channels.get(uniqueid or "")
        number = _known(message.get("CallerIDNum"))
        if channel is not None and number is not None:
            channel.caller_number = number
            channel.caller_name = _known(message.get("CallerIDName"))

    def _on_newstate(self, call: _Call, _u: str | None, message: AmiMessage, at: datetime) -> None:
        if message.get("ChannelState") == CHANNEL_UP and call.answered_at is None:
            call.answered_at = at

    def _on_varset(
        self, call: _Call, uniqueid: str | None, message: AmiMessage, _: datetime
    ) -> None:
        name, value = message.get("Variable") or "", message.get("Value") or ""
        if value:
            self._note_variables(call, uniqueid, {name: value})

    def _on_user_event(self, call: _Call, _u: str | None, message: AmiMessage, _: datetime) -> None:
        name = message.get("UserEvent") or ""
        if name in self.rules.menu_user_events:
            choice = message.get("Choice")
            if not choice:
                return
            if len(call.ivr_choices) >= MAX_CHOICES_PER_CALL or len(choice) > MAX_VALUE_CHARS:
                self.stats.ignored_growth += 1
            else:
                call.ivr_choices.append(f"{name}={choice}")
        elif name == self.rules.message_user_event:
            call.message_path = message.get("File") or call.message_path

    def _on_hangup(
        self, call: _Call, uniqueid: str | None, message: AmiMessage, at: datetime
    ) -> None:
        channel = call.channels.get(uniqueid or "")
        if channel is None or channel.hung_up:
            return
        channel.hung_up = True
        if call.hangup_cause is None:
            # The first hangup says who ended the call and why.
            cause = message.get("Cause") or ""
            call.hangup_cause = int(cause) if cause.isdigit() else None
            call.hangup_cause_text = message.get("Cause-txt")
        call.ended_at = at

    def _on_agent_connect(self, call: _Call, _u: str | None, _m: AmiMessage, _: datetime) -> None:
        # A queue member answered this caller (app_queue, class agent).
        call.agent_answered = True

    def _on_cdr(self, call: _Call, uniqueid: str | None, message: AmiMessage, _: datetime) -> None:
        channel = call.channels.get(uniqueid or "")
        if channel is not None and channel.caller_number is None:
            channel.caller_number = _known(message.get("Source"))

    def _finish_if_over(self, call: _Call, at: datetime) -> TrackedCall | None:
        if not call.channels or not all(c.hung_up for c in call.channels.values()):
            return None
        if call.gap or call.ended_at is None:
            # The last Hangup fell into a connection gap: the resync is the best time we have.
            call.ended_at = at
        del self._calls[call.linkedid]
        for uniqueid in call.channels:
            self._call_of_channel.pop(uniqueid, None)
        self._remember_finished(call.linkedid)
        if self._full and len(self._calls) < self.max_live_calls * 0.9:
            # Some room again (a margin, so a full tracker does not log every call).
            self._full = False
            log.info("calls in progress below ami.max_live_calls again: tracking new calls")
        if not call.reached_hotline and self.rules.hotline_exten is not None:
            self.stats.calls_not_hotline += 1
            self._vanished = self._vanished or call.adopted
            return None
        self.stats.calls_finished += 1
        return self._freeze(call)

    def _freeze(self, call: _Call) -> TrackedCall:
        channels = list(call.channels.values())
        # The caller is who the first channel (uniqueid == linkedid) says; else any channel.
        channels.sort(key=lambda channel: channel.uniqueid != call.linkedid)
        caller = next((c for c in channels if c.caller_number), None)
        return TrackedCall(
            linkedid=call.linkedid,
            uniqueid=call.hotline_uniqueid or call.linkedid,
            caller_number=caller.caller_number if caller else None,
            caller_name=caller.caller_name if caller else None,
            did=call.did,
            started_at=call.started_at,
            answered_at=call.answered_at,
            ended_at=call.ended_at,
            hangup_cause=call.hangup_cause,
            hangup_cause_text=call.hangup_cause_text,
            case_reference=call.case_reference,
            recording_path=call.recording_path,
            message_path=call.message_path,
            ivr_choices=_merged_choices(call.ivr_choices, call.choice_values),
            channels=tuple(call.channels),
            gap=call.gap,
            outcome=call.outcome,
            agent_answered=call.agent_answered,
        )


def _merged_choices(seen: Sequence[str], variables: dict[str, str]) -> tuple[str, ...]:
    """The menu choices from UserEvents (``seen``), completed by choice variables: each holds
    every choice so far, comma-joined, so it also knows choices made while the listener was
    away. A choice both report is kept once (the UserEvent's, which names its menu)."""
    merged = list(seen)
    for name, value in variables.items():
        rest, merged = merged, []
        for choice in value.split(",")[:MAX_CHOICES_PER_CALL]:
            if not choice:
                continue
            if rest and _choice_key(rest[0]) == choice:
                merged.append(rest.pop(0))
            else:
                merged.append(f"{name}={choice}")
        merged += rest
    return tuple(merged)


def _choice_key(choice: str) -> str:
    """What a UserEvent's choice says as the choice variable spells it (the IVR writes the
    same ``menu:key`` tokens to both): ``HotlineMenu=main_menu:1`` -> ``main_menu:1``."""
    return choice.partition("=")[2]


def _duration(value: str | None) -> timedelta | None:
    """``HH:MM:SS`` -> timedelta; None for anything else."""
    parts = (value or "").split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    hours, minutes, seconds = (int(part) for part in parts)
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _known(value: str | None) -> str | None:
    return value if value and value != UNKNOWN_CALLER else None
