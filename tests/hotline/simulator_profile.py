"""What the call tracker and the callback dialler read of a stream, without ids or times: to
check the PBX simulator against the real Asterisk captures of the corpus."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from hotline.ami_protocol import AmiMessage
from hotline.ami_settings import AmiSettings

# Every header hotline/tracker.py and hotline/app/dial.py read (ChanVariable*: the variables).
READ_HEADERS = frozenset(
    {
        "Channel",
        "Uniqueid",
        "UniqueID",
        "Linkedid",
        "Exten",
        "ChanVariable",
        "CallerIDNum",
        "CallerIDName",
        "ChannelState",
        "Variable",
        "Value",
        "UserEvent",
        "Choice",
        "File",
        "Cause",
        "Cause-txt",
        "Source",
        "Response",
        "Reason",
        "ActionID",
        "DialStatus",
    }
)
# The events they act on.
READ_EVENTS = frozenset(
    {
        "Newchannel",
        "NewCallerid",
        "Newstate",
        "Newexten",
        "VarSet",
        "UserEvent",
        "Hangup",
        "Cdr",
        "OriginateResponse",
        "DialEnd",
    }
)


def half(message: AmiMessage) -> str:
    """Which channel of a Local pair sent it: ``;1``, ``;2``, or ``-`` (none named)."""
    channel = message.get("Channel") or ""
    return channel[-2:] if channel[-2:] in (";1", ";2") else "-"


@dataclass(frozen=True)
class Profile:
    """A stream as the tracker and the dialler see it."""

    steps: tuple[str, ...]  # the milestones, in order
    counts: Counter[str]  # event name and half -> how many
    headers: dict[str, frozenset[str]]  # event name -> read headers it carried

    @classmethod
    def of(cls, messages: Iterable[AmiMessage], ami: AmiSettings) -> Profile:
        watched = {ami.case_variable, ami.recording_variable, *ami.choice_variables}
        watched.add("HOTLINE_CALLBACK")
        steps: list[str] = []
        counts: Counter[str] = Counter()
        headers: dict[str, set[str]] = {}
        for message in messages:
            if message.kind != "Event" or message.name not in READ_EVENTS:
                continue
            counts[f"{message.name} {half(message)}"] += 1
            keys = {
                k if not k.startswith("ChanVariable") else "ChanVariable"
                for k, _ in message.headers
            }
            headers.setdefault(message.name, set()).update(keys & READ_HEADERS)
            step = milestone(message, watched)
            if step is not None:
                steps.append(step)
        return cls(tuple(steps), counts, {k: frozenset(v) for k, v in headers.items()})


def milestone(message: AmiMessage, watched: set[str]) -> str | None:
    """The events that change what the tracker or the dialler knows, with what they say."""
    name, where = message.name, half(message)
    if name in ("Newchannel", "NewCallerid"):
        known = message.get("CallerIDNum") not in (None, "", "<unknown>")
        return f"{name} {where} caller {'known' if known else 'unknown'}"
    if name == "Newstate":
        return f"Newstate {where} {message.get('ChannelState')}"
    if name == "VarSet" and message.get("Variable") in watched:
        return f"VarSet {where} {message.get('Variable')}"
    if name == "UserEvent":
        return f"UserEvent {where} {message.get('UserEvent')}"
    if name == "Hangup":
        return f"Hangup {where} cause {message.get('Cause')}"
    if name == "Cdr":
        return "Cdr"
    if name == "OriginateResponse":
        return f"OriginateResponse {message.get('Response')} reason {message.get('Reason')}"
    if name == "DialEnd":
        return f"DialEnd {where} {message.get('DialStatus')}"
    return None


def differences(real: Profile, simulated: Profile) -> list[str]:
    """What the real Asterisk showed that the simulator did not, and the other way round."""
    found = []
    for event in sorted(set(real.headers) | set(simulated.headers)):
        only_real = real.headers.get(event, frozenset()) - simulated.headers.get(event, frozenset())
        only_sim = simulated.headers.get(event, frozenset()) - real.headers.get(event, frozenset())
        if event not in simulated.headers:
            found.append(f"event {event}: only from Asterisk")
        elif event not in real.headers:
            found.append(f"event {event}: only from the simulator")
        else:
            found += [f"{event} header {h}: only from Asterisk" for h in sorted(only_real)]
            found += [f"{event} header {h}: only from the simulator" for h in sorted(only_sim)]
    for key in sorted(set(real.counts) | set(simulated.counts)):
        if real.counts[key] != simulated.counts[key]:
            found.append(f"{key}: Asterisk {real.counts[key]}, simulator {simulated.counts[key]}")
    diff = difflib.unified_diff(
        real.steps, simulated.steps, "asterisk", "simulator", n=0, lineterm=""
    )
    found += [
        f"order: {line}" for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    return found
