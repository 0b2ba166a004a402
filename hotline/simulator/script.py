"""What Asterisk 22 says during one call, event by event (modelled on one-call.server.raw).

Each call is a generator: between ``yield``s it changes its channels, and each yielded event is
rendered from the channels' state at that moment, as Asterisk does. The server interleaves the
generators of many calls in a seeded random order. A call handed to a real FastAGI server
yields ``Wait`` while its dialogue (on a thread of its own) has nothing new to show.
"""

from __future__ import annotations

import random
import re
import shlex
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hotline.simulator.agi_peer import Caller, Take
from hotline.simulator.agi_session import AgiSession, Ended, Exchange
from hotline.simulator.audio import caller_voice

Headers = list[tuple[str, str]]
# manager.conf channelvars, as the generated manager.conf lists them.
CHANNEL_VARIABLES = ("HOTLINE_CASE", "MIXMONITOR_FILENAME", "HOTLINE_OUTCOME", "HOTLINE_CHOICES")
# The IVR's variables: where the dialplan goes next, and what it did for the caller.
NEXT_VARIABLE, OUTCOME_VARIABLE = "HOTLINE_NEXT", "HOTLINE_OUTCOME"
AGENT = "agent"
STATE_NAMES = {0: "Down", 4: "Ring", 6: "Up"}
CALLING_PRES = "0 (Presentation Allowed, Not Screened)"


@dataclass(frozen=True)
class SimulatedCall:
    """One caller. ``register_case=False`` hangs up during the welcome: an abandoned call.

    ``choice`` is the key pressed at the main menu, ``category`` the one at the category menu
    (asked by the FastAGI IVR only); ``leave_message=False`` stays silent when asked to speak;
    ``account_number`` is keyed when the IVR asks for one after the message ("": the question
    times out, as when a caller keys nothing).

    ``agent_answers``: when the IVR hands the caller to the agent queue, a member answers.

    ``caller_name`` may hold surrogate escapes (``"\\udcff"``) to put invalid UTF-8 on the wire.
    ``audio`` is the caller's voice: raw 8 kHz 16-bit mono PCM bytes, or a WAV file's path.
    """

    caller_number: str
    caller_name: str = ""
    choice: str = "1"
    category: str = "1"
    account_number: str = ""
    register_case: bool = True
    leave_message: bool = True
    audio: bytes | Path | None = None
    agent_answers: bool = True


@dataclass
class SimChannel:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    state: int = 0
    priority: int = 1
    caller_number: str = "<unknown>"
    caller_name: str = "<unknown>"
    application: str = ""
    # Every variable set on the channel; events show those in CHANNEL_VARIABLES.
    variables: dict[str, str] = field(default_factory=dict)

    def channel_variables(self) -> list[tuple[str, str]]:
        return [(name, self.variables.get(name, "")) for name in CHANNEL_VARIABLES]

    def headers(self, prefix: str = "") -> Headers:
        connected_number = self.caller_number
        connected_name = self.caller_name
        pairs = [
            ("Channel", self.name),
            ("ChannelState", str(self.state)),
            ("ChannelStateDesc", STATE_NAMES.get(self.state, "Unknown")),
            ("CallerIDNum", self.caller_number),
            ("CallerIDName", self.caller_name),
            ("ConnectedLineNum", connected_number),
            ("ConnectedLineName", connected_name),
            ("Language", "en"),
            ("AccountCode", ""),
            ("Context", self.context),
            ("Exten", self.exten),
            ("Priority", str(self.priority)),
            ("Uniqueid", self.uniqueid),
            ("Linkedid", self.linkedid),
        ]
        pairs += [("ChanVariable", f"{k}={v}") for k, v in self.channel_variables()]
        return [(prefix + key, value) for key, value in pairs]


@dataclass(frozen=True)
class Wait:
    """Yielded by a call waiting for its FastAGI dialogue: run it again once ``ready()``."""

    ready: Callable[[], bool]


Step = Headers | Wait
StartAgi = Callable[[Caller], AgiSession]
# GET DATA's answer when the caller keyed something (not a timeout, not a hang-up).
KEYED = re.compile(r"^200 result=([0-9*#]+)")


class ChannelRegistry:
    """The live channels, as CoreShowChannels reports them."""

    def __init__(self) -> None:
        self.channels: dict[str, SimChannel] = {}

    def add(self, channel: SimChannel) -> None:
        self.channels[channel.uniqueid] = channel

    def remove(self, channel: SimChannel) -> None:
        self.channels.pop(channel.uniqueid, None)


def event(
    name: str, privilege: str, channel: SimChannel | None, *extra: tuple[str, str]
) -> Headers:
    headers = [("Event", name), ("Privilege", privilege)]
    if channel is not None:
        headers += channel.headers()
    return headers + list(extra)


def core_show_channel(channel: SimChannel, action_id: str) -> Headers:
    return [
        ("Event", "CoreShowChannel"),
        ("ActionID", action_id),
        *channel.headers(),
        ("BridgeId", ""),
        ("Application", channel.application),
        ("ApplicationData", ""),
        ("Duration", "00:00:05"),
    ]


@dataclass(frozen=True)
class CallIds:
    number: int  # the Local channel's sequence number (hex in its name)
    first: str  # Uniqueid of ;1, which is also the call's Linkedid
    second: str  # Uniqueid of ;2


def hotline_call(
    call: SimulatedCall,
    ids: CallIds,
    registry: ChannelRegistry,
    recordings_dir: Path,
    save_audio: Callable[[Path, SimulatedCall], None],
    rng: random.Random,
    exten: str = "15654",
) -> Iterator[Headers]:
    """A caller reaching the hotline through ``Local/15654@hotline`` (both halves), answered by
    a scripted IVR of Playback/Read/Record."""
    one, two = _local_halves(ids, exten)
    yield from _arrive(call, one, two, registry, rng)
    if not call.register_case:
        yield from _app(two, "Playback", "custom/hotline-welcome")
        yield from _hang_up(one, two, registry, rng, ivr_first=False)
        return
    case = f"HL-{two.uniqueid}"
    yield from _app(two, "Set", f"HOTLINE_CASE={case}")
    yield from _set(two, "HOTLINE_CASE", case)
    recording = recordings_dir / f"hotline-{two.linkedid}-{two.uniqueid}.wav"
    yield from _mix_monitor(two, recording)
    yield _user_event(two, "HotlineRecording", ("File", str(recording)), ("Case", case))
    yield from _app(two, "Playback", "custom/hotline-welcome")
    yield from _set(two, "PLAYBACKSTATUS", "SUCCESS")
    # Meanwhile the caller's side (;1) waits, then dials its choice, as caller-sim does.
    one.context, one.exten, one.priority = "caller-sim", "s", 0
    yield from _app(one, "Wait", "5.5")
    yield from _app(one, "SendDTMF", f"{call.choice},250")
    yield from _app(two, "Read", "CHOICE,custom/hotline-menu,1,,1,6")
    yield from _dtmf_received(two, call.choice)
    yield from _set(two, "READSTATUS", "OK")
    yield from _set(two, "CHOICE", call.choice)
    yield _user_event(two, "HotlineMenu", ("Choice", call.choice), ("Case", case))
    yield from _set(two, "HOTLINE_CHOICES", call.choice)
    yield from _app(two, "Playback", "custom/hotline-record")
    yield from _set(two, "PLAYBACKSTATUS", "SUCCESS")
    yield from _app(one, "Playback", "custom/caller-ar-complaint")
    message = recordings_dir / f"message-{two.uniqueid}.wav"
    if call.leave_message:
        yield from _app(two, "Record", f"{message},4,30,k")
        yield _user_event(two, "HotlineMessage", ("File", str(message)), ("Status", "SILENCE"))
        save_audio(message, call)
    # The complaint is registered and its reference told: the IVR says the caller was served.
    yield from _set(two, OUTCOME_VARIABLE, "registered")
    save_audio(recording, call)
    yield from _hang_up(one, two, registry, rng, ivr_first=True)


def agi_call(
    call: SimulatedCall,
    ids: CallIds,
    registry: ChannelRegistry,
    recordings_dir: Path,
    save_audio: Callable[[Path, SimulatedCall], None],
    rng: random.Random,
    start_agi: StartAgi,
    exten: str = "15654",
    new_ids: Callable[[], CallIds] | None = None,
) -> Iterator[Step]:
    """A caller reaching the hotline whose dialplan is the generated one: MixMonitor, then the
    real FastAGI IVR (``start_agi`` opens the session), the agent queue when the IVR sends the
    caller there (``new_ids`` numbers the queue member's channels), then the call ends."""
    one, two = _local_halves(ids, exten)
    yield from _arrive(call, one, two, registry, rng)
    recording = recordings_dir / f"hotline-{two.linkedid}-{two.uniqueid}.wav"
    yield from _mix_monitor(two, recording)
    yield from _through_agi(call, one, two, start_agi)
    member: tuple[SimChannel, SimChannel] | None = None
    if two.variables.get(NEXT_VARIABLE) == AGENT and new_ids is not None:
        member = yield from agent_queue(two, new_ids(), registry, answers=call.agent_answers)
    save_audio(recording, call)
    # An abandoning caller hangs up during the welcome; anyone else the IVR ends the call for.
    yield from _hang_up(one, two, registry, rng, ivr_first=call.register_case)
    if member is not None:
        # Nobody answered: the ringing member is cleared once the caller has gone (cause 0).
        for channel in member:
            registry.remove(channel)
            yield event("Hangup", "call,all", channel, ("Cause", "0"), ("Cause-txt", "Unknown"))


def agent_queue(
    two: SimChannel, ids: CallIds, registry: ChannelRegistry, *, answers: bool
) -> Generator[Headers, None, tuple[SimChannel, SimChannel] | None]:
    """``Queue(hotline-agents)`` ringing one member, a Local channel (as in
    tests/fixtures/ami/outcome/agent-*.server.raw): its halves share the caller's Linkedid;
    when it answers, ``AgentConnect`` names the caller's channel and the member as Dest*.
    Returns the member's channels when nobody answered (they ring until the caller goes)."""
    yield from _app(two, "Queue", "hotline-agents")
    base = f"Local/agent1@agent-phone-{ids.number:08x}"
    m1 = SimChannel(f"{base};1", ids.first, two.linkedid, "agent-phone", "agent1")
    m2 = SimChannel(f"{base};2", ids.second, two.linkedid, "agent-phone", "agent1")
    for channel in (m1, m2):
        registry.add(channel)
        yield event("Newchannel", "call,all", channel)
    yield from _app(m1, "AppQueue", "(Outgoing Line)")
    if not answers:
        yield from _app(m2, "Ringing", "")
        return m1, m2
    m1.state = m2.state = 6
    yield event("Newstate", "call,all", m2)
    yield event("Newstate", "call,all", m1)
    yield event(
        "AgentConnect",
        "agent,all",
        two,
        *m1.headers("Dest"),
        ("Queue", "hotline-agents"),
        ("Interface", "Local/agent1@agent-phone"),
        ("MemberName", "Local/agent1@agent-phone"),
        ("HoldTime", "0"),
        ("RingTime", "0"),
    )
    for channel in (m2, m1):  # the agent hangs up first
        registry.remove(channel)
        yield event(
            "Hangup", "call,all", channel, ("Cause", "16"), ("Cause-txt", "Normal Clearing")
        )
    return None


def _local_halves(ids: CallIds, exten: str) -> tuple[SimChannel, SimChannel]:
    base = f"Local/{exten}@hotline-{ids.number:08x}"
    one = SimChannel(f"{base};1", ids.first, ids.first, "hotline", exten)
    two = SimChannel(f"{base};2", ids.second, ids.first, "hotline", exten, state=4)
    return one, two


def _arrive(
    call: SimulatedCall,
    one: SimChannel,
    two: SimChannel,
    registry: ChannelRegistry,
    rng: random.Random,
) -> Iterator[Headers]:
    """Both halves come up, learn the caller's number, and the hotline half answers."""
    registry.add(one)
    yield event("Newchannel", "call,all", one)
    registry.add(two)
    yield event("Newchannel", "call,all", two)
    for channel in (one, two):
        channel.caller_number, channel.caller_name = call.caller_number, call.caller_name
        yield event("NewCallerid", "call,all", channel, ("CID-CallingPres", CALLING_PRES))
    yield [
        ("Event", "LocalBridge"),
        ("Privilege", "call,all"),
        *one.headers("LocalOne"),
        *two.headers("LocalTwo"),
        ("Context", "hotline"),
        ("Exten", two.exten),
        ("LocalOptimization", "Yes"),
    ]
    yield from _app(two, "NoOp", f"Complaints hotline call from {call.caller_number}")
    yield from _app(two, "Answer", "")
    two.state = one.state = 6
    # Which half reports Up first varies between real runs.
    for channel in rng.sample([one, two], 2):
        yield event("Newstate", "call,all", channel)


def _through_agi(
    call: SimulatedCall, one: SimChannel, two: SimChannel, start_agi: StartAgi
) -> Iterator[Step]:
    """``AGI(agi://…/hotline,${CHANNEL(linkedid)})``: the caller keys "1" for a new complaint,
    then their category, says their complaint and presses #, then keys their account number
    (if they have one); what the IVR does meanwhile shows
    on AMI as Asterisk shows it."""
    takes = [Take("dtmf", caller_voice(call.audio))] if call.leave_message else []
    session = start_agi(
        Caller(
            uniqueid=two.uniqueid,
            callerid=call.caller_number,
            linkedid=two.linkedid,
            keys=[call.choice, call.category, call.account_number],
            takes=takes,
            # An abandoning caller hangs up during the welcome.
            hangup_on=None if call.register_case else "STREAM FILE",
            channel=two.name,
        )
    )
    one.context, one.exten, one.priority = "caller-sim", "s", 0
    yield from _app(two, "AGI", f"{session.request},{two.linkedid}")
    session.start()
    while isinstance(news := (yield from _news(session)), Exchange):
        yield from _agi_events(one, two, news)
    yield from _set(two, "AGISTATUS", news.status)


def _news(session: AgiSession) -> Generator[Step, None, Exchange | Ended]:
    while not session.ready():
        yield Wait(session.ready)
    return session.take()


def _agi_events(one: SimChannel, two: SimChannel, exchange: Exchange) -> Iterator[Headers]:
    """The AMI side of one AGI command: keys the caller pressed, variables set, UserEvents."""
    words = shlex.split(exchange.command)
    reply = exchange.reply.decode().splitlines()[-1]  # after a HANGUP line, if any
    if not reply.startswith("200"):
        return  # refused (a dead channel): nothing happened
    verb = " ".join(words[:2])
    keyed = KEYED.match(reply)
    if verb == "GET DATA" and keyed is not None:
        yield from _app(one, "SendDTMF", f"{keyed[1]},250")
        for digit in keyed[1]:
            yield from _dtmf_received(two, digit)
    elif verb == "SET VARIABLE":
        yield from _set(two, words[2], words[3])
    elif verb == "EXEC UserEvent":
        # UserEvent(name,Key: value,...) puts each item on the wire as a header line.
        name, *items = words[2].split(",")
        body = [(key, value.strip()) for key, _, value in (i.partition(":") for i in items)]
        yield event("UserEvent", "user,all", two, ("UserEvent", name), *body)


def callback_call(
    agent: str,
    ids: CallIds,
    registry: ChannelRegistry,
    action_id: str,
    *,
    context: str,
    customer: str,
    dial_status: str,
    record: Callable[[str], Callable[[], None]],
    talk: Wait | None = None,
) -> Iterator[Step]:
    """An agent's callback as AMI Originate places it (as in a real Asterisk 22 capture): the
    originated channel ``Local/<agent>@...;1`` rings the agent through its ;2 half, and once
    they answer, ;1 runs ``context``/``customer``: MixMonitor (``record`` starts the file and
    returns what closes it) and Dial of the customer. An answered customer talks until ``talk``
    is ready; the recording is closed before ;1, the channel that ran MixMonitor, hangs up."""
    base = f"Local/{agent}@{context}-{ids.number:08x}"
    one = SimChannel(f"{base};1", ids.first, ids.first, context, agent)
    two = SimChannel(f"{base};2", ids.second, ids.first, context, agent, state=4)
    for channel in (one, two):
        registry.add(channel)
        yield event("Newchannel", "call,all", channel)
    one.state = two.state = 6
    yield event("Newstate", "call,all", two)
    # The Originate's own dial of the agent: Dest* headers only, before OriginateResponse.
    yield [
        ("Event", "DialEnd"),
        ("Privilege", "call,all"),
        *one.headers("Dest"),
        ("DialStatus", "ANSWER"),
    ]
    yield [
        ("Event", "OriginateResponse"),
        ("Privilege", "call,all"),
        ("ActionID", action_id),
        ("Response", "Success"),
        ("Channel", one.name),
        ("Context", context),
        ("Exten", customer),
        ("Reason", "4"),
        ("Uniqueid", one.uniqueid),
        ("CallerIDNum", "<unknown>"),
        ("CallerIDName", "<unknown>"),
        *[(f"ChanVariable({one.name})", f"{k}={v}") for k, v in one.channel_variables()],
    ]
    one.context, one.exten = context, customer
    close_recording = record(one.uniqueid)
    yield event("MixMonitorStart", "call,all", one)
    destination = ("DestChannel", f"PJSIP/trunk-{ids.number:08x}")
    yield event("DialBegin", "call,all", one, destination, ("DialString", customer))
    yield event("DialEnd", "call,all", one, destination, ("DialStatus", dial_status))
    if dial_status == "ANSWER" and talk is not None:
        yield talk
    cause = ("16", "Normal Clearing") if dial_status == "ANSWER" else ("17", "User busy")
    for channel in (two, one):
        if channel is one:
            close_recording()
        registry.remove(channel)
        yield event("Hangup", "call,all", channel, ("Cause", cause[0]), ("Cause-txt", cause[1]))


def _app(channel: SimChannel, application: str, data: str) -> Iterator[Headers]:
    channel.priority += 1
    channel.application = application
    yield event(
        "Newexten",
        "dialplan,all",
        channel,
        ("Extension", channel.exten),
        ("Application", application),
        ("AppData", data),
    )


def _mix_monitor(channel: SimChannel, recording: Path) -> Iterator[Headers]:
    yield from _app(channel, "MixMonitor", f"{recording},i(MIXMON_ID)")
    yield from _set(channel, "MIXMONITOR_FILENAME", str(recording))
    yield event("MixMonitorStart", "call,all", channel)


def _dtmf_received(channel: SimChannel, digit: str) -> Iterator[Headers]:
    yield event("DTMFBegin", "dtmf,all", channel, ("Digit", digit), ("Direction", "Received"))
    yield event(
        "DTMFEnd",
        "dtmf,all",
        channel,
        ("Digit", digit),
        ("DurationMs", "100"),
        ("Direction", "Received"),
    )


def _set(channel: SimChannel, name: str, value: str) -> Iterator[Headers]:
    channel.variables[name] = value
    yield event("VarSet", "dialplan,all", channel, ("Variable", name), ("Value", value))


def _user_event(channel: SimChannel, name: str, *body: tuple[str, str]) -> Headers:
    # The dialplan repeats Uniqueid in the body, as extensions.conf does: keys repeat.
    return event(
        "UserEvent", "user,all", channel, ("UserEvent", name), *body, ("Uniqueid", channel.uniqueid)
    )


def _cdr(channel: SimChannel) -> Headers:
    return [
        ("Event", "Cdr"),
        ("Privilege", "cdr,all"),
        ("AccountCode", ""),
        ("Source", channel.caller_number),
        ("Destination", channel.exten),
        ("DestinationContext", channel.context),
        ("CallerID", f'"{channel.caller_name}" <{channel.caller_number}>'),
        ("Channel", channel.name),
        ("Disposition", "ANSWERED"),
        ("UniqueID", channel.uniqueid),
        ("UserField", ""),
    ]


def _hang_up(
    one: SimChannel,
    two: SimChannel,
    registry: ChannelRegistry,
    rng: random.Random,
    *,
    ivr_first: bool,
) -> Iterator[Headers]:
    """The end of the call: the caller hanging up (;1 first, with its SoftHangupRequest), or,
    once the caller was served, the hotline half ending it (as Asterisk 22 shows: its hangup
    handler's HotlineCallEnded and Hangup before the caller's Hangup, no SoftHangupRequest).
    The hotline half runs its h extension either way."""
    cause = (("Cause", "16"), ("Cause-txt", "Normal Clearing"))
    if not ivr_first:
        yield event("SoftHangupRequest", "call,all", one, ("Cause", "16"))
    cdr_first = rng.random() < 0.5  # Cdr lands before or after its Hangup between runs
    for channel in (two, one) if ivr_first else (one, two):
        if channel is two:
            channel.exten, channel.priority = "h", 1
            yield _user_event(channel, "HotlineCallEnded", ("Cause", "16"))
        if cdr_first:
            yield _cdr(channel)
        registry.remove(channel)
        yield event("Hangup", "call,all", channel, *cause)
        if not cdr_first:
            yield _cdr(channel)
