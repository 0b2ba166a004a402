"""The calls of the real-PBX suite, placed all at once (a complaint call alone takes 80 s of
Arabic prompts), each scenario from numbers of its own so the checks cannot mix them up; and
the capture of what Asterisk sent, split per scenario, for the replay corpus."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from casebook import callbacks, cases
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import Agent, Call, Callback, CallbackStatus, Case
from hotline.ami_protocol import AmiMessage
from tests.pbx.site import HOTLINE, PATIENCE, SPEECH_SOUND, AmiDriver, Block, Site, wait_until

SEEDER = Actor.system("pbx-test")
CAPTURE_ENV = "HOTLINE_PBX_CAPTURE"
# A complaint call: welcome, two menus, the message, the reference twice, the date, thanks.
CALL_PATIENCE = 240.0


@dataclass(frozen=True)
class Caller:
    number: str
    steps: str  # PBX_STEPS of contexts.conf's [pbx-caller]


@dataclass(frozen=True)
class Dial:
    """``hotline callbacks dial`` by ``agent`` (extension ``extension``) to ``customer``: the
    agent's phone rung through the generated [hotline-agents] context."""

    agent: str
    extension: str
    customer: str


COMPLAINT_STEPS = "silence/1/silence/2/silence/speak/#"
# The account number a caller keys after their message, once the question has been asked.
KEYED_ACCOUNT = "0912345678"
STATUS_OWNER = "0911000002"
STRANGER = "0911000003"
# Dialled one after the other: each result is its own call's.
DIALS = {
    "callback-answered": Dial("pbxagent", "201", "0911000101"),
    "callback-busy": Dial("pbxagent", "201", "0921000102"),
    "callback-unanswered": Dial("pbxagent", "201", "0931000103"),
    "callback-agent-busy": Dial("pbxbusy", "202", "0911000104"),
}
# Dialled at once, after those: an agent who never answers and one who answers at once.
AT_ONCE = {
    "callback-at-once-away": Dial("pbxaway", "203", "0911000105"),
    "callback-at-once-answered": Dial("pbxagent", "201", "0911000106"),
}


def status_steps(reference: str, last4: str | None, hash_key: bool) -> str:
    """Keys 2, the reference (and, asked, the last 4 digits), as the prompts say: "then #", or
    without it, waiting for the next question; then listens until the hotline hangs up."""
    end = "#" if hash_key else ""
    steps = f"silence/2/silence/{reference}{end}"
    if last4 is not None:
        steps += f"/prompt/{last4}{end}"
    return steps


def callers(reference: str) -> dict[str, list[Caller]]:
    last4 = STATUS_OWNER[-4:]
    return {
        "new-complaint": [Caller("0911000001", COMPLAINT_STEPS)],
        "keypad-number": [Caller("0911000006", f"{COMPLAINT_STEPS}/prompt/{KEYED_ACCOUNT}#")],
        "status-owner": [Caller(STATUS_OWNER, status_steps(reference, None, False))],
        "status-owner-hash": [Caller(STATUS_OWNER, status_steps(reference, None, True))],
        "status-stranger": [Caller(STRANGER, status_steps(reference, last4, False))],
        "status-stranger-hash": [Caller(STRANGER, status_steps(reference, last4, True))],
        "agent": [Caller("0911000004", "silence/0")],
        "abandoned": [Caller("0911000005", "wait3/hangup")],
        "concurrent-10": [Caller(f"09120000{n:02d}", COMPLAINT_STEPS) for n in range(10)],
    }


@dataclass
class Placed:
    caller: Caller
    answer: Future[AmiMessage]

    @property
    def linkedid(self) -> str:
        uniqueid = self.answer.result(PATIENCE).get("Uniqueid")
        assert uniqueid, "Originate gave no Uniqueid"
        return uniqueid

    @property
    def hotline_channel(self) -> str:
        """The ;2 half: the channel that runs the hotline's dialplan and plays its prompts."""
        channel = self.answer.result(PATIENCE).get("Channel") or ""
        return channel.removesuffix(";1") + ";2"


class Traffic:
    def __init__(self, site: Site, driver: AmiDriver) -> None:
        self.site = site
        self.driver = driver
        self.db = Database(site.settings.database)
        self.reference = ""
        self.placed: dict[str, list[Placed]] = {}
        self.dials: dict[str, Future[subprocess.CompletedProcess[str]]] = {}
        self.callback_ids: dict[str, int] = {}

    # -- placing --------------------------------------------------------------------------

    def start(self) -> None:
        self.db.run(self._seed)
        for name, group in callers(self.reference).items():
            self.placed[name] = [self.call(caller) for caller in group]
        threading.Thread(target=self._dial_all, daemon=True).start()

    def call(self, caller: Caller) -> Placed:
        return place(self.driver, caller)

    def _dial_all(self) -> None:
        for name, dial in DIALS.items():
            self.dials[name].set_result(self.dial(self.callback_ids[name], dial))
        # The second dialler starts once the first has placed its call, so the first is
        # listening when Asterisk announces the second's OriginateResponse.
        away, answered = AT_ONCE.items()
        self._dial_in_background(*away)
        ringing = f"Local/{away[1].extension}@pbx-agents"
        self.driver.wait_for(lambda m: (m.get("Channel") or "").startswith(ringing))
        self._dial_in_background(*answered)

    def _dial_in_background(self, name: str, dial: Dial) -> None:
        def work() -> None:
            self.dials[name].set_result(self.dial(self.callback_ids[name], dial))

        threading.Thread(target=work, daemon=True).start()

    def dial(self, callback_id: int, dial: Dial) -> subprocess.CompletedProcess[str]:
        """``hotline callbacks dial ID`` as that agent, signed in."""
        env = self.site.people[dial.agent]
        command = [HOTLINE, "callbacks", "dial", str(callback_id)]
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=CALL_PATIENCE, check=False
        )

    def _seed(self, session: Session) -> None:
        settings = self.site.settings
        case = cases.register_complaint(
            session, settings, SEEDER, caller_number=STATUS_OWNER, category="billing"
        )
        assert case.reference is not None
        self.reference = case.reference
        # A callback due now, assigned to the agent who will dial it.
        for name, dial in {**DIALS, **AT_ONCE}.items():
            self.dials[name] = Future()
            case = cases.register_complaint(
                session, settings, SEEDER, caller_number=dial.customer, category="network"
            )
            callback = callbacks.request_followup_callback(
                session, settings, SEEDER, case, utcnow() - timedelta(days=2)
            )
            assert callback is not None and callback.id is not None
            agent = session.exec(select(Agent).where(Agent.username == dial.agent)).one()
            callback.assigned_agent_id, callback.assigned_at = agent.id, utcnow()
            callback.status = CallbackStatus.ASSIGNED.value
            self.callback_ids[name] = callback.id

    # -- reading the outcome --------------------------------------------------------------

    def stored_call(self, linkedid: str, timeout: float = CALL_PATIENCE) -> Call:
        """The call's row once the listener has stored its end."""
        found: list[Call] = []

        def ended() -> bool:
            with self.db.session() as session:
                rows = list(session.exec(select(Call).where(Call.linkedid == linkedid)))
            found[:] = rows
            return len(rows) == 1 and rows[0].ended_at is not None

        assert wait_until(ended, timeout), f"call {linkedid} was not stored ended: {found}"
        return found[0]

    def case_of(self, call: Call) -> Case | None:
        with self.db.session() as session:
            return session.get(Case, call.case_id) if call.case_id is not None else None

    def callbacks_for(self, number: str) -> list[Callback]:
        with self.db.session() as session:
            return list(session.exec(select(Callback).where(Callback.phone_number == number)))

    def callback_linkedid(self, callback_id: int) -> str:
        """The Linkedid of the call a callback's dial placed (its HOTLINE_CALLBACK VarSet)."""
        assert self.driver.wait_for(lambda m: is_callback(m, callback_id)), "no such callback"
        with self.driver.lock():
            linkedid = callback_linkedid(self.driver.blocks, callback_id)
        assert linkedid is not None
        return linkedid

    def wait_hung_up(self, linkedid: str, timeout: float = CALL_PATIENCE) -> None:
        wait_hung_up(self.driver, linkedid, timeout)

    def all_over(self, timeout: float = CALL_PATIENCE) -> bool:
        """Every placed call is stored ended and every dial has returned."""
        for group in self.placed.values():
            for placed in group:
                self.stored_call(placed.linkedid, timeout)
        return all(done.result(timeout) is not None for done in self.dials.values())

    # -- the corpus -----------------------------------------------------------------------

    def write_captures(self, folder: Path) -> None:
        """Each scenario's own messages, as Asterisk sent them, banner and login first."""
        with self.driver.lock():
            blocks = list(self.driver.blocks)
        scenarios: dict[str, list[str]] = {
            name: [placed.linkedid for placed in group] for name, group in self.placed.items()
        }
        for name, callback_id in self.callback_ids.items():
            linkedid = callback_linkedid(blocks, callback_id)
            # The diallers that ran at once are one scenario: their events interleave.
            key = "callbacks-at-once" if name in AT_ONCE else name
            scenarios.setdefault(key, []).extend([linkedid] if linkedid else [])
        customers = {name: [dial.customer] for name, dial in DIALS.items()}
        customers["callbacks-at-once"] = [dial.customer for dial in AT_ONCE.values()]
        for name, linkedids in scenarios.items():
            dialled = customers.get(name, [])
            chosen = of_calls(blocks, linkedids, dialled)
            responses = [b.message for b in chosen if b.message.name == "OriginateResponse"]
            callers = self.placed.get(name)
            self.write_scenario(
                folder / name,
                [segment(self.driver, linkedids, dialled=dialled)],
                linkedids,
                # The simulated callers' numbers (None: a callback's dial, no hotline call).
                callers=[placed.caller.number for placed in callers] if callers else None,
                # The dialler's Originate (a caller's is the test's own, not the product's).
                originate_action_id=(responses[0].action_id if responses and dialled else None),
            )

    def write_scenario(
        self, target: Path, segments: Sequence[bytes], linkedids: list[str], **extra: object
    ) -> None:
        """server.raw (server-2.raw… for the connections after an outage) and meta.json."""
        target.mkdir(parents=True, exist_ok=True)
        for number, data in enumerate(segments, 1):
            name = "server.raw" if number == 1 else f"server-{number}.raw"
            target.joinpath(name).write_bytes(data)
        meta = {
            "scenario": target.name,
            "asterisk": "22.10.1",
            "linkedids": linkedids,
            "callers": None,
            "recordings_root": str(self.site.recordings),
            # The cases the IVR registered for these calls, for the store's replay.
            "cases": self._cases(linkedids),
            "originate_action_id": None,
            "listener_restarted": False,
            **extra,
        }
        target.joinpath("meta.json").write_text(json.dumps(meta, indent=1) + "\n")

    def _cases(self, linkedids: list[str]) -> list[dict[str, object]]:
        with self.db.session() as session:
            found = session.exec(select(Case).where(col(Case.call_linkedid).in_(linkedids)))
            return [
                {
                    "reference": case.reference,
                    "caller_number": case.caller_number,
                    "call_linkedid": case.call_linkedid,
                    "call_uniqueid": case.call_uniqueid,
                    "category": case.category,
                    "department": case.department,
                }
                for case in found
            ]


def segment(
    driver: AmiDriver,
    linkedids: Sequence[str],
    *,
    start: int = 0,
    until: int | None = None,
    snapshot: str = "",
    dialled: Sequence[str] = (),
) -> bytes:
    """What one listener connection got for these calls: the banner, the answers to the
    session's Login, Filter and Events, the ``snapshot`` CoreShowChannels answer (its ActionID;
    the listener asks after each login), then the calls' events among messages ``start`` to
    ``until``."""
    with driver.lock():
        blocks = list(driver.blocks)
        banner = bytes(driver.raw[: driver.raw.index(b"\r\n") + 2])
    preface = [b for b in blocks if b.message.kind == "Response"][: driver.setup_actions]
    listed = [b for b in blocks if snapshot and b.message.action_id == snapshot]
    chosen = of_calls(blocks[start:until], linkedids, dialled)
    return banner + b"".join(b.raw for b in [*preface, *listed, *chosen])


def place(driver: AmiDriver, caller: Caller) -> Placed:
    """A simulated caller dials 15654: the ;1 half of Local/15654@hotline runs [pbx-caller]."""
    answer = driver.originate(
        "Local/15654@hotline",
        "pbx-caller",
        "s",
        caller.number,
        {"PBX_STEPS": caller.steps, "PBX_SPEECH": SPEECH_SOUND},
    )
    return Placed(caller, answer)


def wait_hung_up(driver: AmiDriver, linkedid: str, timeout: float = CALL_PATIENCE) -> None:
    """Until every channel of the call has hung up (Asterisk has closed its files)."""

    def over(_: AmiMessage) -> bool:
        mine = [b.message for b in driver.blocks if b.message.get("Linkedid") == linkedid]
        up = {m.get("Uniqueid") for m in mine if m.name == "Newchannel"}
        return bool(up) and up <= {m.get("Uniqueid") for m in mine if m.name == "Hangup"}

    assert driver.wait_for(over, timeout), f"call {linkedid} is still up"


def in_ivr(driver: AmiDriver, linkedid: str, timeout: float = CALL_PATIENCE) -> None:
    """Until the caller has made a menu choice: the call is well inside the IVR."""
    assert driver.wait_for(
        lambda m: m.get("UserEvent") == "HotlineMenu" and m.get("Linkedid") == linkedid, timeout
    ), f"call {linkedid} never reached the IVR's menu"


def is_callback(message: AmiMessage, callback_id: int) -> bool:
    return (
        message.name == "VarSet"
        and message.get("Variable") == "HOTLINE_CALLBACK"
        and message.get("Value") == str(callback_id)
    )


def callback_linkedid(blocks: Iterable[Block], callback_id: int) -> str | None:
    return next(
        (b.message.get("Linkedid") for b in blocks if is_callback(b.message, callback_id)), None
    )


def of_calls(
    blocks: Sequence[Block], linkedids: Sequence[str], dialled: Sequence[str] = ()
) -> list[Block]:
    """The events of these calls, in stream order: by Linkedid, and by the Uniqueid of their
    channels for the events that carry none (Cdr, OriginateResponse); and the OriginateResponse
    of an Originate to one of the ``dialled`` extensions, which names no channel when it failed
    (``Uniqueid: <null>``)."""
    wanted = set(linkedids)
    channels = {
        b.message.get("Uniqueid")
        for b in blocks
        if b.message.get("Linkedid") in wanted and b.message.get("Uniqueid")
    }
    chosen = []
    for block in blocks:
        message = block.message
        # A CoreShowChannels answer is the listener's own question, not the calls' events.
        if message.kind != "Event" or message.name.startswith("CoreShowChannel"):
            continue
        linkedid = message.get("Linkedid")
        uniqueid = message.get("Uniqueid") or message.get("UniqueID")
        failed = message.name == "OriginateResponse" and message.get("Exten") in dialled
        if linkedid in wanted or (linkedid is None and uniqueid in channels) or failed:
            chosen.append(block)
    return chosen


def capture_folder() -> Path | None:
    value = os.environ.get(CAPTURE_ENV)
    return Path(value) if value else None
