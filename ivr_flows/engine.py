"""Runs a flow for one call over a ``HotlineAGI`` connection.

Every prompt is played by name from the channel's language folder (``hotline/<id>``); numbers
are said with SAY DIGITS (``digits/N``) and dates with the IVR's own date prompts. The engine
only asks and tells: registering a complaint and looking one up go through ``IvrBackend``.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import re
import shutil
import stat
import sys
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from asterisk.agi import AGIAppError, AGIError

from casebook.reference import REFERENCE_LENGTH, InvalidReference, normalise_reference
from ivr_flows.agi import CallerHungUp, HotlineAGI
from ivr_flows.arabic import date_sounds
from ivr_flows.backend import IvrBackend, RegisteredComplaint, StatusAnswer
from ivr_flows.flow import (
    CaseStatusNode,
    Flow,
    HangupNode,
    KeypadNumberQuestion,
    MenuNode,
    Node,
    PlayNode,
    RecordComplaintNode,
    TransferNode,
)

log = logging.getLogger(__name__)

PROMPT_FOLDER = "hotline"
# The AMI listener reads HOTLINE_CASE, HOTLINE_CHOICES and HOTLINE_OUTCOME (manager.conf
# channelvars) and the UserEvents below (hotline.ami_settings AmiSettings.menu_user_events /
# message_user_event); the dialplan reads HOTLINE_NEXT after AGI returns.
CASE_VARIABLE = "HOTLINE_CASE"
NEXT_VARIABLE = "HOTLINE_NEXT"
# Every menu choice so far, comma-joined like the UserEvents' Choice (main_menu:1,...): set on
# the channel, so choices made while the listener was down reach it with the next event.
CHOICES_VARIABLE = "HOTLINE_CHOICES"
# How the caller was served: registered, status or agent; unset means not served (abandoned).
OUTCOME_VARIABLE = "HOTLINE_OUTCOME"
MENU_EVENT = "HotlineMenu"
MESSAGE_EVENT = "HotlineMessage"
# A WAV file of this size or less holds a header and no audio.
WAV_HEADER_BYTES = 44
# Asterisk's silence detector (dsp.conf silencethreshold, default 256): a 20 ms frame whose mean
# absolute sample is below it is silence. RECORD FILE ends on silence_seconds of it and keeps
# one second of it, so a caller who says nothing leaves a second of silence (measured).
SILENCE_THRESHOLD = 256
FRAME_SAMPLES = 160
# A flow may loop back to its menu; this bounds one call whatever the flow says.
MAX_STEPS = 100
# Asterisk's Uniqueid/Linkedid look like 1700000000.42; anything else is not used in a path.
SAFE_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,127}$")
_ANONYMOUS = {"", "unknown", "anonymous", "restricted", "private"}


# The caller's messages among the recordings (message_base names them so): the worker follows
# these as they are recorded.
MESSAGE_FILES = "message-*.wav"


def message_base(recordings_root: Path, uniqueid: str) -> Path:
    """Where the caller's message is recorded, without the extension Asterisk adds."""
    return recordings_root.resolve() / f"message-{uniqueid}"


def message_file(recordings_root: Path, uniqueid: str) -> Path:
    """The caller's message as RECORD FILE leaves it (``message_base`` with Asterisk's .wav)."""
    return Path(f"{message_base(recordings_root, uniqueid)}.wav")  # a Uniqueid has a dot


def leave_message(
    backend: IvrBackend,
    recordings_root: Path,
    source: Path,
    *,
    uniqueid: str,
    caller_number: str | None,
) -> RegisteredComplaint:
    """A complaint registered with ``source`` as its caller's message, as a call through a flow
    leaves it, without the call: the audio where RECORD FILE writes it (copied unless it is
    there already), the complaint registered and the message queued by the backend. For
    replaying recorded messages (bench/drain.py's burst, the worker's tests)."""
    wav = message_file(recordings_root, uniqueid)
    wav.parent.mkdir(parents=True, exist_ok=True)
    if source.resolve() != wav:
        shutil.copyfile(source, wav)
    return backend.register_complaint(
        caller_number=caller_number,
        uniqueid=uniqueid,
        linkedid=uniqueid,  # a call of its own
        message_path=str(wav),
        menu_choices=[],
        category=None,
    )


def holds_sound(wav: Path) -> bool:
    """Whether any 20 ms of a 16-bit WAV file is louder than Asterisk's silence threshold.

    Opened without following a symlink; a file that is not 16-bit WAV counts as sound (the
    ingest judges it).
    """
    try:
        fd = os.open(wav, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as raw, wave.open(raw) as audio:
            if audio.getsampwidth() != 2:
                return True
            while frames := audio.readframes(FRAME_SAMPLES):
                samples = array.array("h", frames)
                if sys.byteorder == "big":
                    samples.byteswap()  # WAV samples are little-endian
                if sum(map(abs, samples)) >= SILENCE_THRESHOLD * len(samples):
                    return True
    except (OSError, wave.Error, EOFError, ValueError):
        return True
    return False


@contextlib.contextmanager
def _failure_is_a_warning(what: str) -> Iterator[None]:
    """A command Asterisk could not carry out on a live channel (a missing sound file...) is one
    WARNING and the call goes on; a hang-up (an AGIAppError too) ends the call."""
    try:
        yield
    except CallerHungUp:
        raise
    except AGIAppError:
        log.warning("%s failed", what)


def caller_number(callerid: str | None) -> str | None:
    """The calling number as digits (a leading + kept), or None when withheld."""
    text = (callerid or "").strip()
    if text.lower() in _ANONYMOUS:
        return None
    number = re.sub(r"[^0-9+]", "", text)
    return number if any(char.isdigit() for char in number) else None


@dataclass
class Call:
    uniqueid: str
    linkedid: str
    caller_number: str | None
    choices: list[str] = field(default_factory=list)
    # Values set by menu choices, e.g. category.
    values: dict[str, str] = field(default_factory=dict)
    reference: str | None = None
    outcome: str | None = None
    # A key pressed to cut a prompt short: the answer to the menu that follows it.
    typeahead: str = ""
    # References looked up in this call that named no case of the caller's (status by phone).
    wrong_references: int = 0
    # The account or line number keyed after the message (None: not asked, or skipped).
    keypad_number: str | None = None


class BackendFailed(Exception):
    """The casebook could not answer; the caller has heard the error prompt."""


class FlowRunner:
    """Walks one flow; one instance serves every call (it keeps no per-call state)."""

    def __init__(
        self,
        flow: Flow,
        backend: IvrBackend,
        *,
        recordings_root: Path,
        zone: ZoneInfo,
        wrong_per_call: int = 3,
    ) -> None:
        """``wrong_per_call``: settings.status_by_phone.wrong_per_call."""
        self.flow = flow
        self.backend = backend
        self.recordings_root = recordings_root
        self.zone = zone
        self.wrong_per_call = wrong_per_call

    def identify(self, agi: HotlineAGI) -> Call:
        uniqueid = agi.env.get("agi_uniqueid", "")
        if not SAFE_ID.match(uniqueid):
            raise AGIError(f"unusable agi_uniqueid {uniqueid!r}")
        # The dialplan passes ${CHANNEL(linkedid)} as the first argument; ask if it did not.
        linkedid = agi.env.get("agi_arg_1", "")
        if not SAFE_ID.match(linkedid):
            linkedid = str(agi.get_variable("CHANNEL(linkedid)"))
        if not SAFE_ID.match(linkedid):
            linkedid = uniqueid
        return Call(uniqueid, linkedid, caller_number(agi.env.get("agi_callerid")))

    def run(self, agi: HotlineAGI) -> Call:
        call = self.identify(agi)
        node_id: str | None = self.flow.start
        for _ in range(MAX_STEPS):
            if node_id is None:
                break
            try:
                node_id = self._step(agi, call, node_id, self.flow.nodes[node_id])
            except BackendFailed:
                break
        return call

    def _step(self, agi: HotlineAGI, call: Call, node_id: str, node: Node) -> str | None:
        if isinstance(node, PlayNode):
            following = self.flow.nodes[node.next]
            # Keys the next menu accepts cut the prompt short and answer that menu.
            escape = "".join(following.choices) if isinstance(following, MenuNode) else ""
            call.typeahead = self._play(agi, node.prompt, escape)
            return node.next
        if isinstance(node, MenuNode):
            return self._menu(agi, call, node_id, node)
        if isinstance(node, RecordComplaintNode):
            return self._record_complaint(agi, call, node)
        if isinstance(node, CaseStatusNode):
            return self._case_status(agi, call, node)
        if isinstance(node, TransferNode):
            self._play(agi, node.prompt)
            self._served(agi, call, "agent")
            agi.set_variable(NEXT_VARIABLE, "agent")
            return None
        assert isinstance(node, HangupNode)
        self._play(agi, node.prompt)
        return None

    # -- small AGI helpers ----------------------------------------------------------------

    def _play(self, agi: HotlineAGI, prompt_id: str, escape: str = "") -> str:
        return self._stream(agi, f"{PROMPT_FOLDER}/{prompt_id}", escape)

    @staticmethod
    def _stream(agi: HotlineAGI, sound: str, escape: str = "") -> str:
        """Play a sound; the escape key that cut it short, or ''."""
        with _failure_is_a_warning(f"playing {sound}"):
            return str(agi.stream_file(sound, escape))
        return ""

    @staticmethod
    def _say_digits(agi: HotlineAGI, digits: str) -> None:
        with _failure_is_a_warning(f"saying {digits} (are the digit sounds built?)"):
            agi.say_digits(digits)

    @staticmethod
    def _ask(agi: HotlineAGI, prompt_id: str, timeout_seconds: float, max_digits: int) -> str:
        with _failure_is_a_warning(f"asking {prompt_id}"):
            return agi.get_data(f"{PROMPT_FOLDER}/{prompt_id}", int(timeout_seconds * 1000),
                                max_digits)  # fmt: skip
        return ""

    def _ask_number(
        self, agi: HotlineAGI, prompt_id: str, timeout_seconds: float, length: int
    ) -> str:
        """A number of ``length`` digits, keyed with or without the # the prompt asks for.

        GET DATA returns as soon as its maximum is keyed, which would leave the caller's # to
        end the next question empty: one digit more is asked for, and # (never in the result)
        ends the input early. Without #, the input ends on the timeout.
        """
        return self._ask(agi, prompt_id, timeout_seconds, length + 1)

    @staticmethod
    def _set(agi: HotlineAGI, name: str, value: str) -> None:
        with _failure_is_a_warning(f"setting {name}"):
            agi.set_variable(name, value)

    def _served(self, agi: HotlineAGI, call: Call, outcome: str) -> None:
        """Tell the listener (HOTLINE_OUTCOME) that the caller has been served, once a kind."""
        if call.outcome != outcome:
            call.outcome = outcome
            self._set(agi, OUTCOME_VARIABLE, outcome)

    @staticmethod
    def _user_event(agi: HotlineAGI, name: str, **headers: str) -> None:
        # UserEvent splits its argument on commas: keep them out of the values.
        body = ",".join(f"{key}: {value.replace(',', ' ')}" for key, value in headers.items())
        with _failure_is_a_warning(f"UserEvent {name}"):
            agi.appexec("UserEvent", f"{name},{body}")

    def _say_date(self, agi: HotlineAGI, moment: datetime) -> None:
        for sound in date_sounds(moment.astimezone(self.zone).date()):
            self._stream(agi, sound)

    # -- nodes ----------------------------------------------------------------------------

    def _menu(self, agi: HotlineAGI, call: Call, node_id: str, node: MenuNode) -> str:
        for _ in range(self.flow.tries(node)):
            key = call.typeahead or self._ask(agi, node.prompt, node.timeout_seconds, 1)
            call.typeahead = ""
            choice = node.choices.get(key)
            if choice is not None:
                call.choices.append(f"{node_id}:{key}")
                call.values.update(choice.set)
                self._user_event(agi, MENU_EVENT, Choice=f"{node_id}:{key}",
                                 Uniqueid=call.uniqueid)  # fmt: skip
                self._set(agi, CHOICES_VARIABLE, ",".join(call.choices))
                return choice.next
            self._play(agi, node.invalid_prompt if key else node.no_input_prompt)
        return node.give_up

    def _record_complaint(self, agi: HotlineAGI, call: Call, node: RecordComplaintNode) -> str:
        base = message_base(self.recordings_root, call.uniqueid)
        wav = message_file(self.recordings_root, call.uniqueid)
        tries = self.flow.tries(node)
        for attempt in range(1, tries + 1):
            self._play(agi, node.prompt)
            try:
                outcome = agi.record_file(str(base), "wav", "#", node.max_seconds * 1000, 0,
                                          "beep", node.silence_seconds)  # fmt: skip
                ended_by = outcome.ended_by
            except CallerHungUp:
                ended_by = "hangup"
            has_audio = self._message_has_audio(wav)
            if has_audio:
                # On a dead channel the event may be refused; the case below matters more.
                with contextlib.suppress(CallerHungUp):
                    self._user_event(agi, MESSAGE_EVENT, File=str(wav), Status=ended_by,
                                     Uniqueid=call.uniqueid)  # fmt: skip
            if ended_by == "hangup":
                # The caller said their piece and hung up: that is a complaint all the same.
                if has_audio:
                    self._register(agi, call, wav, node, announce=False)
                raise CallerHungUp("hung up while recording")
            if has_audio:
                break
            if attempt < tries:
                self._play(agi, node.no_message_prompt)
        else:
            return node.give_up
        if node.keypad_number is not None:
            try:
                call.keypad_number = self._keypad_number(agi, node.keypad_number)
            except CallerHungUp:
                # Hung up instead of keying: the message is a complaint all the same.
                self._register(agi, call, wav, node, announce=False)
                raise
        complaint = self._register(agi, call, wav, node, announce=True)
        if call.keypad_number is not None and node.keypad_number is not None:
            self._play(agi, node.keypad_number.confirm_prompt)
            self._say_digits(agi, call.keypad_number)
        self._play(agi, node.registered_prompt)
        self._say_digits(agi, complaint.reference)
        self._play(agi, node.repeat_prompt)
        self._say_digits(agi, complaint.reference)
        self._play(agi, node.promised_prompt)
        self._say_date(agi, complaint.promised_by)
        return node.next

    def _keypad_number(self, agi: HotlineAGI, question: KeypadNumberQuestion) -> str | None:
        """The digits keyed, or None when the caller skipped (timeout, or * or # alone) or
        keyed no usable number ``question.tries`` times.

        One digit more than the maximum is asked for, so a number too long is told apart from
        one of the maximum length (and # after the maximum never ends the next question).
        """
        for _ in range(question.tries):
            keyed = self._ask(agi, question.prompt, question.timeout_seconds,
                              question.max_digits + 1)  # fmt: skip
            if keyed in ("", "*"):
                return None
            if keyed.isascii() and keyed.isdigit() and len(keyed) <= question.max_digits:
                return keyed
            self._play(agi, question.invalid_prompt)
        return None

    @staticmethod
    def _message_has_audio(wav: Path) -> bool:
        """Whether the message file holds sound; one holding a header or silence is removed.

        Only a regular file at the IVR's own path (inside recordings.root, see message_base) is
        read or removed: a symlink there is never followed.
        """
        try:
            info = wav.lstat()
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(info.st_mode):
            log.warning("message file %s is not a regular file: ignored", wav)
            return False
        if info.st_size > WAV_HEADER_BYTES and holds_sound(wav):
            return True
        # The caller said nothing: Asterisk left a header, or a second of silence, which nothing
        # will use (and qa verify would flag as unexpected for ever).
        wav.unlink(missing_ok=True)
        return False

    def _register(
        self, agi: HotlineAGI, call: Call, wav: Path, node: RecordComplaintNode, *, announce: bool
    ) -> RegisteredComplaint:
        try:
            complaint = self.backend.register_complaint(
                caller_number=call.caller_number,
                uniqueid=call.uniqueid,
                linkedid=call.linkedid,
                message_path=str(wav),
                menu_choices=list(call.choices),
                category=call.values.get("category"),
                keypad_number=call.keypad_number,
            )
        except Exception as exc:
            log.exception("call %s: the complaint could not be registered", call.uniqueid)
            if announce:
                self._play(agi, node.error_prompt)
            raise BackendFailed from exc
        call.reference = complaint.reference
        log.info("call %s: complaint %s registered", call.uniqueid, complaint.reference)
        try:
            # res_agi sets variables on a dead channel too: a caller who hung up after speaking
            # was served all the same (the case exists, nobody needs to call them back).
            self._set(agi, CASE_VARIABLE, complaint.reference)
            self._served(agi, call, "registered")
        except CallerHungUp:
            if announce:
                raise
            # Hung up already: the case exists, the listener links it by Uniqueid instead.
        return complaint

    def _case_status(self, agi: HotlineAGI, call: Call, node: CaseStatusNode) -> str | None:
        """References are asked ``tries`` times. A wrong one (looked up, naming no case of the
        caller's) counts for the whole call, however the flow comes back here: at
        ``wrong_per_call`` the caller is told and the call ends. The backend may refuse a
        number that asked too often (``StatusAnswer.limited``): the same ending."""
        if call.wrong_references >= self.wrong_per_call:
            self._no_more_lookups(agi, call, node)
            return None
        for _ in range(self.flow.tries(node)):
            keyed = self._ask_number(agi, node.prompt, node.timeout_seconds, REFERENCE_LENGTH)
            if not keyed:
                self._play(agi, node.no_input_prompt)
                continue
            try:
                reference = normalise_reference(keyed)
            except InvalidReference:
                # Mistyped (its check digit is wrong): nothing was looked up, nothing learnt.
                self._play(agi, node.invalid_prompt)
                continue
            answer = self._lookup(agi, call, node, reference, None)
            if not (answer.found and answer.identity_confirmed) and not answer.limited:
                # Asked whether or not the case exists, so the question tells a stranger nothing.
                last4 = self._ask_number(agi, node.last4_prompt, node.timeout_seconds, 4)
                if len(last4) == 4 and last4.isdigit():
                    answer = self._lookup(agi, call, node, reference, last4)
            if answer.limited:
                self._no_more_lookups(agi, call, node)
                return None
            # A valid reference was looked up: the enquiry is answered, found or not.
            self._served(agi, call, "status")
            if answer.found and answer.identity_confirmed:
                self._say_status(agi, node, answer)
                return node.next
            if self._wrong(call):
                self._no_more_lookups(agi, call, node)
                return None
            self._play(agi, node.not_found_prompt)
        return node.give_up

    def _wrong(self, call: Call) -> bool:
        """Count a wrong reference; whether the call has had its last."""
        call.wrong_references += 1
        return call.wrong_references >= self.wrong_per_call

    def _no_more_lookups(self, agi: HotlineAGI, call: Call, node: CaseStatusNode) -> None:
        """Told politely, and the call ends (nothing follows in the flow). Served: the enquiry
        was answered, so the listener asks no callback to this number."""
        log.warning(
            "call %s: no more status lookups (%d wrong references)",
            call.uniqueid,
            call.wrong_references,
        )
        self._served(agi, call, "status")
        self._play(agi, node.limit_prompt or node.not_found_prompt)

    def _lookup(
        self, agi: HotlineAGI, call: Call, node: CaseStatusNode, reference: str, last4: str | None
    ) -> StatusAnswer:
        try:
            return self.backend.case_status(
                reference=reference, caller_number=call.caller_number, last4=last4
            )
        except Exception as exc:
            log.exception("call %s: status lookup failed", call.uniqueid)
            self._play(agi, node.error_prompt)
            raise BackendFailed from exc

    def _say_status(self, agi: HotlineAGI, node: CaseStatusNode, answer: StatusAnswer) -> None:
        status = answer.status or "unknown"
        self._play(agi, node.status_prompts.get(status, node.status_prompts["unknown"]))
        if answer.promised_by is not None and status in node.say_promised_for:
            self._play(agi, node.promised_prompt)
            self._say_date(agi, answer.promised_by)
