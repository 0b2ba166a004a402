"""The replay corpus: real Asterisk 22 traffic per scenario (``tests/fixtures/ami/<scenario>/``,
captured by ``tests/pbx/capture.py``), replayed through the real AMI parser, the call tracker,
the store and the callback dialler's watch, as cacofonisk replays its recorded calls.

Each scenario folder holds ``server.raw`` (the bytes Asterisk sent: banner, the answers to the
capture session's Login/Filter/Events actions, then that scenario's events in stream order),
``meta.json`` (what the capture knew: the calls' Linkedids, the cases the IVR registered, the
recordings folder) and ``expected.json`` (the whole ordered sequence the tracker reported, the
rows the store wrote, and the dialler's result).

Normalised so that a file compares on any machine: Asterisk's ids become ``id1``, ``id2``… in
order of first appearance in the stream, case references ``case1``…, the recordings folder
``<recordings>``, and a time is the number of the message that brought it (message ``n`` is
replayed at ``EPOCH + n`` seconds).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from casebook.db import Database
from casebook.models import Call, Callback, Case
from hotline.ami_protocol import AmiMessage, ParseStats, iter_messages
from hotline.app.config import Settings
from hotline.app.dial import OriginateWatch
from hotline.app.persist import CallStore
from hotline.tracker import CallTracker, TrackedCall, TrackerRules

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
ASTERISK_ID = re.compile(r"\b\d{9,11}\.\d+\b")
ID_HEADERS = ("Uniqueid", "UniqueID", "Linkedid")


def scenarios() -> list[str]:
    return sorted(p.parent.name for p in CORPUS.glob("*/server.raw"))


@dataclass
class Scenario:
    name: str
    # server.raw, then server-2.raw… for the listener's connections after an outage.
    segments: list[bytes]
    meta: dict[str, Any]

    @classmethod
    def load(cls, name: str) -> Scenario:
        folder = CORPUS / name
        meta = json.loads((folder / "meta.json").read_text())
        later = sorted(folder.glob("server-*.raw"), key=lambda p: int(p.stem.split("-")[1]))
        raws = [(folder / "server.raw").read_bytes(), *(p.read_bytes() for p in later)]
        return cls(name, raws, meta)

    def connections(self) -> Iterator[list[AmiMessage]]:
        for raw in self.segments:
            yield list(iter_messages(raw, expect_banner=True, stats=ParseStats()))

    def messages(self) -> Iterator[tuple[int, AmiMessage]]:
        """Every message of every connection, numbered on."""
        yield from enumerate(m for messages in self.connections() for m in messages)

    def expected(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((CORPUS / self.name / "expected.json").read_text())
        return loaded


@dataclass
class Names:
    """Stable stand-ins for values that differ between captures."""

    root: str
    ids: dict[str, str] = field(default_factory=dict)
    cases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, scenario: Scenario) -> Names:
        names = cls(scenario.meta["recordings_root"])
        for _, message in scenario.messages():
            for header in ID_HEADERS:
                value = message.get(header)
                if value and ASTERISK_ID.fullmatch(value):
                    names.id(value)
        return names

    def id(self, value: str) -> str:
        return self.ids.setdefault(value, f"id{len(self.ids) + 1}")

    def case(self, reference: str | None) -> str | None:
        if reference is None:
            return None
        return self.cases.setdefault(reference, f"case{len(self.cases) + 1}")

    def path(self, path: str | None) -> str | None:
        if path is None:
            return None
        text = path.replace(self.root, "<recordings>", 1)
        return ASTERISK_ID.sub(lambda match: self.id(match[0]), text)


def at(moment: datetime | None) -> int | None:
    """A replayed time -> the number of the message that brought it."""
    return None if moment is None else int((moment - EPOCH).total_seconds())


def tracked(call: TrackedCall, names: Names) -> dict[str, Any]:
    return {
        "linkedid": names.id(call.linkedid),
        "uniqueid": names.id(call.uniqueid),
        "channels": [names.id(channel) for channel in call.channels],
        "caller_number": call.caller_number,
        "caller_name": call.caller_name,
        "did": call.did,
        "started": at(call.started_at),
        "answered": at(call.answered_at),
        "ended": at(call.ended_at),
        "hangup_cause": call.hangup_cause,
        "hangup_cause_text": call.hangup_cause_text,
        "case": names.case(call.case_reference),
        "recording": names.path(call.recording_path),
        "message": names.path(call.message_path),
        "ivr_choices": list(call.ivr_choices),
        "gap": call.gap,
        "status": call.status,
    }


class Reporter:
    """A ``CallSink`` that keeps the ordered sequence of what it was told."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.seen: list[dict[str, Any]] = []

    def call_noted(self, call: TrackedCall) -> None:
        self.seen.append({"noted": tracked(call, self.names)})

    def call_finished(self, call: TrackedCall) -> None:
        self.seen.append({"finished": tracked(call, self.names)})

    def calls_alive(self, linkedids: set[str], at_: datetime) -> None:
        self.seen.append({"alive": sorted(self.names.id(i) for i in linkedids), "at": at(at_)})


def feed(scenario: Scenario, tracker_for: Callable[[int], CallTracker]) -> None:
    """Each connection's messages to ``tracker_for(its number)``, as ``AmiClient`` delivers
    them: a CoreShowChannels answer as one snapshot, everything else one event at a time."""
    number = 0
    for index, messages in enumerate(scenario.connections()):
        tracker = tracker_for(index)
        listed: list[AmiMessage] = []
        for message in messages:
            moment = EPOCH + timedelta(seconds=number)
            number += 1
            if message.name == "CoreShowChannel":
                listed.append(message)
            elif message.name == "CoreShowChannelsComplete":
                tracker.on_channels(listed, moment)
                listed = []
            else:
                tracker.on_event(message, moment)


class Listeners:
    """The listener process(es) the stream went to: one for all connections, or a new one
    (tracker and store) for each when the scenario's listener was restarted."""

    def __init__(self, scenario: Scenario, make: Callable[[], CallTracker]) -> None:
        self.restarted = bool(scenario.meta.get("listener_restarted"))
        self.make = make
        self.trackers: list[CallTracker] = []

    def __call__(self, connection: int) -> CallTracker:
        if not self.trackers or self.restarted:
            self.trackers.append(self.make())
        return self.trackers[-1]


def replay_tracker(scenario: Scenario, settings: Settings) -> list[dict[str, Any]]:
    reporter = Reporter(Names.of(scenario))
    rules = TrackerRules.from_settings(settings.ami)
    feed(scenario, Listeners(scenario, lambda: CallTracker(reporter, rules)))
    return reporter.seen


def replay_store(
    scenario: Scenario, settings: Settings, *, listeners: int = 1
) -> dict[str, list[dict[str, Any]]]:
    """Into an empty database holding only the cases the IVR had registered: the call rows and
    callbacks the listener writes (``listeners``: that many listeners in turn, each told all
    of the stream, as after a restart)."""
    names = Names.of(scenario)
    settings.recordings.root = Path(scenario.meta["recordings_root"])
    db = Database(settings.database, create=True)
    try:
        db.run(lambda session: session.add_all(Case(**case) for case in scenario.meta["cases"]))
        rules = TrackerRules.from_settings(settings.ami)
        stores: list[CallStore] = []

        def listener() -> CallTracker:
            if stores:
                stores[-1].stop()  # the last listener's writes are in before the next starts
            stores.append(CallStore(db, settings))
            stores[-1].start()
            return CallTracker(stores[-1], rules)

        for _ in range(listeners):
            feed(scenario, Listeners(scenario, listener))
        stores[-1].stop()
        with db.session() as session:
            calls = list(session.exec(select(Call)))
            cases = {c.id: c.reference for c in session.exec(select(Case))}
            callbacks = list(session.exec(select(Callback)))
    finally:
        db.dispose()
    # In stream order, so that cases are named in the order their calls appeared.
    calls.sort(key=lambda call: int(names.id(call.linkedid).removeprefix("id")))
    linkedids = {call.id: names.id(call.linkedid) for call in calls}
    rows = [
        {
            "linkedid": names.id(call.linkedid),
            "uniqueid": names.id(call.uniqueid) if call.uniqueid else None,
            "caller_number": call.caller_number,
            "did": call.did,
            "started": at(call.started_at),
            "answered": at(call.answered_at),
            "ended": at(call.ended_at),
            "hangup_cause": call.hangup_cause,
            "abandoned": call.abandoned,
            "case": names.case(cases.get(call.case_id)) if call.case_id else None,
            "recording": names.path(call.recording_path),
            "recording_missing": call.recording_missing,
            "ivr_choices": call.ivr_choices,
        }
        for call in calls
    ]
    requested = [
        {
            "phone_number": callback.phone_number,
            "reason": callback.reason,
            "call": linkedids.get(callback.call_id) if callback.call_id else None,
        }
        for callback in callbacks
    ]
    return {
        "calls": rows,
        "callbacks": sorted(requested, key=lambda r: (r["call"] or "", r["phone_number"])),
    }


def replay_dial(scenario: Scenario) -> dict[str, str] | None:
    """What ``hotline callbacks dial`` concludes from this stream, following the ActionID of the
    Originate it sent (None: no dial in this scenario)."""
    action_id = scenario.meta.get("originate_action_id")
    if action_id is None:
        return None
    watch = OriginateWatch()
    watch.follow(action_id)
    for number, message in scenario.messages():
        watch.on_event(message, EPOCH + timedelta(seconds=number))
    return {"result": str(watch.result), "detail": watch.detail}


def replay_settings(folder: Path) -> Settings:
    """The product's defaults, with a database of its own in ``folder``."""
    settings = Settings()
    settings.database.url = f"sqlite:///{folder / 'replay.db'}"
    return settings


def expected_now(scenario: Scenario, settings: Settings) -> dict[str, Any]:
    """What today's code makes of the scenario (``capture.py`` writes it as expected.json)."""
    return {
        "tracker": replay_tracker(scenario, settings),
        "store": replay_store(scenario, settings),
        "dial": replay_dial(scenario),
    }
