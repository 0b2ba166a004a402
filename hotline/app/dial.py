"""Placing a callback: AMI Originate rings the agent's phone, then the dialplan's callback
context dials the customer (recorded); what came of it is read from the events and stored.

Results, from the events Asterisk sends for this Originate:
- OriginateResponse Failure: the agent's phone was busy, did not answer or failed;
- otherwise the DialEnd of the customer leg: ANSWER, BUSY, NOANSWER (others: failed);
- the call ending with no DialEnd (the agent hung up first): failed.

The result is stored as soon as it is known; the recording only once Asterisk has closed it.
MixMonitor runs on the originated channel (the one OriginateResponse names, whose Uniqueid is
the call's Linkedid) and writes the WAV header's lengths when that channel hangs up: a file read
before is header-only or says 0 bytes of data, and its hash changes after.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from casebook import callbacks
from casebook.access import Actor
from casebook.clock import utcnow
from casebook.db import Database
from casebook.models import AttemptResult, Callback, RecordingKind
from hotline.ami import AmiClient, AmiError
from hotline.ami_protocol import AmiMessage
from hotline.app.config import Settings
from recordings.ingest import ingest_recording

log = logging.getLogger(__name__)

R = AttemptResult
DIAL_STATUS = {"ANSWER": R.ANSWERED, "BUSY": R.BUSY, "NOANSWER": R.NO_ANSWER}
# OriginateResponse Reason codes (Asterisk's AST_CONTROL_*): why the first leg did not answer.
AGENT_LEG = {"5": R.BUSY, "3": R.NO_ANSWER, "0": R.NO_ANSWER}
# The dialler's session sees only OriginateResponse, DialEnd and Hangup: a callback has a dozen
# before its OriginateResponse, other diallers' calls may add some.
UNNAMED_EVENTS_KEPT = 1000


class DialError(Exception):
    """The callback could not be placed (no AMI, no extension…); nothing was dialled."""


@dataclass(frozen=True)
class DialOutcome:
    callback: Callback
    result: AttemptResult
    detail: str


class OriginateWatch:
    """An AMI handler that follows one Originate to its result."""

    def __init__(self) -> None:
        self.action_id: str | None = None
        self.result: AttemptResult | None = None
        self.detail = ""
        # The originated channel's Uniqueid (also the call's Linkedid): it runs the callback
        # context, its MixMonitor and its Dial of the customer.
        self._originated: str | None = None
        self._done = threading.Event()
        # That channel hung up (or never ran the callback context): the recording is closed.
        self._closed = threading.Event()
        self._early: list[AmiMessage] = []
        # Its DialEnd can come before OriginateResponse names it (seen on Asterisk 22 when the
        # customer answers at once): the call events until then, kept to be read once it does.
        self._unnamed: deque[AmiMessage] = deque(maxlen=UNNAMED_EVENTS_KEPT)

    def follow(self, action_id: str) -> None:
        self.action_id = action_id
        for message in self._early:  # the response may arrive before the action's answer
            self.on_event(message, utcnow())

    def on_event(self, message: AmiMessage, received_at: datetime) -> None:
        del received_at
        if message.name == "OriginateResponse":
            if self.action_id is None:
                self._early.append(message)
            elif message.action_id == self.action_id:
                self._on_response(message)
        elif self._originated is None:
            self._unnamed.append(message)
        else:
            self._on_call_event(message)

    def _on_call_event(self, message: AmiMessage) -> None:
        # Only the originated channel's own events: the agent's leg shares the Linkedid, and
        # its DialEnd (the agent's phone answered, through [hotline-agents]) is no customer's.
        if message.get("Uniqueid") != self._originated:
            return
        if message.name == "DialEnd":
            status = message.get("DialStatus") or ""
            self._finish(DIAL_STATUS.get(status, R.FAILED), f"customer leg: {status}")
        elif message.name == "Hangup":
            self._finish(R.FAILED, "ended before the customer was dialled")
            self._closed.set()

    def on_channels(self, channels: Sequence[AmiMessage], received_at: datetime) -> None:
        del channels, received_at

    def _on_response(self, message: AmiMessage) -> None:
        if message.get("Response") != "Success":
            reason = message.get("Reason") or ""
            self._finish(AGENT_LEG.get(reason, R.FAILED), f"agent leg: reason {reason}")
            self._closed.set()  # nothing ran the callback context: nothing was recorded
            return
        self._originated = message.get("Uniqueid")
        while self._unnamed:
            self._on_call_event(self._unnamed.popleft())

    def _finish(self, result: AttemptResult, detail: str) -> None:
        if self.result is None:
            self.result, self.detail = result, detail
            self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def wait_closed(self, timeout: float) -> bool:
        """Whether the recording is closed (the channel that ran MixMonitor hung up)."""
        return self._closed.wait(timeout)


def dial_callback(
    db: Database,
    settings: Settings,
    actor: Actor,
    callback_id: int,
    *,
    timeout: float = 180.0,
    call_timeout: float = 4 * 3600.0,
) -> DialOutcome:
    """Ring the agent, then the customer; store the attempt's result (within ``timeout``), then,
    once the call has ended (within ``call_timeout``), its recording. A recording still open
    then is left on disk for ``reconcile_recordings``. What the casebook can refuse (no
    extension, not the agent's callback, not assigned, outside the call window) is refused
    before the PBX is contacted."""
    target = db.run(
        lambda session: callbacks.ready_to_dial(session, settings, actor, callback_id, utcnow())
    )
    key = f"cb{callback_id}-{uuid.uuid4().hex[:12]}"
    watch = OriginateWatch()
    # Only what tells this call's result needs to cross the wire.
    filters = ["Event: OriginateResponse", "Event: DialEnd", "Event: Hangup"]
    client = AmiClient(settings.ami.model_copy(update={"event_filters": filters}), watch)
    stop = threading.Event()
    runner = threading.Thread(target=_run_quietly, args=(client, stop), daemon=True)
    runner.start()
    try:
        if not _wait_connected(client, runner, settings.ami.connect_timeout * 3):
            raise DialError(f"cannot reach Asterisk AMI at {settings.ami.host}:{settings.ami.port}")
        # Claimed now: while the PBX was reached, someone else may have dialled it.
        callback, _ = db.run(
            lambda session: callbacks.start_attempt(session, actor, callback_id, key, utcnow())
        )
        policy = settings.callbacks
        try:
            answer = client.action(
                "Originate",
                {
                    "Channel": policy.agent_channel.format(extension=target.extension),
                    "Context": policy.context,
                    "Exten": callback.phone_number,
                    "Priority": "1",
                    "CallerID": policy.caller_id,
                    "Timeout": str(policy.ring_seconds * 1000),
                    "Async": "true",
                },
                {"HOTLINE_CALLBACK": str(callback_id)},
            )
            watch.follow(answer.response.action_id or "")
            finished = watch.wait(timeout)
        except AmiError as exc:
            watch.result, watch.detail, finished = R.FAILED, f"Originate refused: {exc}", True
        result = watch.result if finished and watch.result is not None else R.FAILED
        detail = watch.detail if finished else f"no result within {timeout:g} s"
        stored = db.run(
            lambda session: callbacks.record_attempt_result(
                session, settings, actor, key, result, utcnow(), detail
            )
        )
        closed = finished and watch.wait_closed(call_timeout)
    finally:
        stop.set()
        runner.join()
    if closed:
        db.run(lambda session: ingest_callback_recordings(session, settings, actor, stored))
    else:
        log.warning("callback %s: the call did not end in time; its recording is left", key)
    return DialOutcome(stored, result, detail)


def ingest_callback_recordings(
    session: Session, settings: Settings, actor: Actor, callback: Callback
) -> None:
    """The callback context's MixMonitor names its file after the callback: keep it like any
    call (ingest is once per path, so earlier attempts' files are not stored twice)."""
    root = Path(settings.recordings.root)
    for path in sorted(root.glob(f"callback-{callback.id}-*.wav")):
        ingest_callback_recording(session, settings, actor, str(path), callback.case_id)


def ingest_callback_recording(
    session: Session, settings: Settings, actor: Actor, path: str, case_id: int | None
) -> None:
    """One callback recording, kept with its case like any call's."""
    ingest_recording(
        session,
        actor,
        path,
        kind=RecordingKind.CALLBACK,
        root=settings.recordings.root,
        case_id=case_id,
        retention=settings.retention,
    )


def _run_quietly(client: AmiClient, stop: threading.Event) -> None:
    try:
        client.run(stop)
    except AmiError:
        stop.set()  # a refused login: _wait_connected sees the thread end


def _wait_connected(client: AmiClient, runner: threading.Thread, timeout: float) -> bool:
    waited = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if client.connected:
            return True
        if not runner.is_alive():
            return False
        waited.wait(0.05)
    return client.connected
