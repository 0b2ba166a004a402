"""A scripted Asterisk that drives the FastAGI server over TCP, answering like Asterisk 22.

It sends the AGI environment, then answers each command with the lines real Asterisk writes
(``200 result=…``, ``endpos=`` for playback and recording, the FastAGI ``HANGUP`` line and
``511`` once the channel is dead) and keeps every command it received.
"""

from __future__ import annotations

import shlex
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
# Commands res_agi still runs on a dead channel.
ALLOWED_WHEN_DEAD = ("SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "VERBOSE", "NOOP", "EXEC")
SAFETY_TIMEOUT = 20.0  # a safety net only: a healthy test never waits for it


@dataclass
class Take:
    """One RECORD FILE: how it ends and how many bytes of audio the caller leaves."""

    ends: Literal["dtmf", "timeout", "hangup"] = "dtmf"
    audio_bytes: int = 16_000
    # Real Asterisk writes "(hangup)"; the bare form must be understood as well.
    hangup_note: bool = True


@dataclass
class Caller:
    uniqueid: str = "1763800000.101"
    callerid: str = "0912345678"
    linkedid: str | None = "1763800000.100"  # passed as agi_arg_1; None: only via GET VARIABLE
    keys: list[str] = field(default_factory=list)  # answers to GET DATA in order; "" = timeout
    takes: list[Take] = field(default_factory=lambda: [Take()])
    # Hang up when a command starting with this arrives (its reply is then the hang-up one).
    hangup_on: str | None = None


@dataclass
class CallLog:
    commands: list[str] = field(default_factory=list)

    def played(self) -> list[str]:
        """Sounds played, in order (STREAM FILE and GET DATA prompts)."""
        names = []
        for command in self.commands:
            words = shlex.split(command)
            if command.startswith(("STREAM FILE", "GET DATA")):
                names.append(words[2])
        return names

    def said_digits(self) -> list[str]:
        return [shlex.split(c)[2] for c in self.commands if c.startswith("SAY DIGITS")]

    def user_events(self) -> list[str]:
        return [shlex.split(c)[2] for c in self.commands if c.startswith("EXEC UserEvent")]

    def variables(self) -> dict[str, str]:
        found = {}
        for command in self.commands:
            if command.startswith("SET VARIABLE"):
                _, _, name, value = shlex.split(command)
                found[name] = value
        return found


def wav_bytes(audio_bytes: int) -> bytes:
    """A minimal 8 kHz 16-bit mono WAV with ``audio_bytes`` of silence."""
    header = b"RIFF" + struct.pack("<I", 36 + audio_bytes) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    return header + b"data" + struct.pack("<I", audio_bytes) + bytes(audio_bytes)


class FakeAsterisk:
    def __init__(self, address: tuple[str, int], caller: Caller) -> None:
        self.address = address
        self.caller = caller
        self.log = CallLog()
        self.dead = False
        self._hangup_line_due = False
        self._keys = list(caller.keys)
        self._takes = list(caller.takes)

    def environment(self) -> bytes:
        c = self.caller
        host, port = self.address
        lines = [
            "agi_network: yes",
            "agi_network_script: hotline",
            f"agi_request: agi://{host}:{port}/hotline",
            f"agi_channel: PJSIP/trunk-{c.uniqueid}",
            "agi_language: ar",
            "agi_type: PJSIP",
            f"agi_uniqueid: {c.uniqueid}",
            "agi_version: 22.10.1",
            f"agi_callerid: {c.callerid}",
            "agi_calleridname: unknown",
            "agi_callingpres: 0",
            "agi_dnid: 15654",
            "agi_rdnis: unknown",
            "agi_context: hotline",
            "agi_extension: 15654",
            "agi_priority: 6",
            "agi_enhanced: 0.0",
            "agi_accountcode: ",
            "agi_threadid: 140245690136256",
        ]
        if c.linkedid is not None:
            lines.append(f"agi_arg_1: {c.linkedid}")
        return ("\n".join(lines) + "\n\n").encode()

    def run(self) -> CallLog:
        with socket.create_connection(self.address, timeout=SAFETY_TIMEOUT) as sock:
            sock.sendall(self.environment())
            with sock.makefile("rb") as rfile:
                while line := rfile.readline():
                    command = line.decode().rstrip("\n")
                    self.log.commands.append(command)
                    sock.sendall(self.answer(command))
        return self.log

    def answer(self, command: str) -> bytes:
        prefix = b""
        if self._hangup_line_due:
            # FastAGI tells of the hang-up once, ahead of the next reply.
            prefix, self._hangup_line_due = b"HANGUP\n", False
        if self.dead and not command.startswith(ALLOWED_WHEN_DEAD):
            return prefix + DEAD
        hangup_now = (
            not self.dead
            and self.caller.hangup_on is not None
            and command.startswith(self.caller.hangup_on)
        )
        if hangup_now:
            self.dead, self._hangup_line_due = True, True
        return prefix + self.reply(command, hangup_now).encode()

    def reply(self, command: str, hangup_now: bool) -> str:
        words = shlex.split(command)
        verb = " ".join(words[:2])
        if verb == "RECORD FILE":
            return self.record(words, hangup_now)
        if hangup_now:
            return "200 result=-1 endpos=0\n" if verb == "STREAM FILE" else "200 result=-1\n"
        if verb == "STREAM FILE":
            return "200 result=0 endpos=16000\n"
        if verb == "GET DATA":
            max_digits = int(words[4]) if len(words) > 4 else 255
            keyed = self._keys.pop(0) if self._keys else ""
            return f"200 result={keyed}{'' if len(keyed) >= max_digits else ' (timeout)'}\n"
        if verb in ("SAY DIGITS", "SAY NUMBER"):
            return "200 result=0\n"
        if verb == "SET VARIABLE":
            return "200 result=1\n"
        if verb == "GET VARIABLE":
            if words[2] == "CHANNEL(linkedid)":
                return f"200 result=1 ({self.caller.linkedid or self.caller.uniqueid})\n"
            return "200 result=0\n"
        if words[0] == "EXEC":
            return "200 result=0\n"
        return "510 Invalid or unknown command\n"

    def record(self, words: list[str], hangup_now: bool) -> str:
        take = self._takes.pop(0) if self._takes else Take("timeout", 0)
        target = Path(f"{words[2]}.{words[3]}")
        if take.audio_bytes:
            target.write_bytes(wav_bytes(take.audio_bytes))
        endpos = take.audio_bytes // 2
        if take.ends == "hangup" or hangup_now:
            self.dead, self._hangup_line_due = True, True
            note = " (hangup)" if take.hangup_note else ""
            return f"200 result=-1{note} endpos={endpos}\n"
        if take.ends == "dtmf":
            return f"200 result=35 (dtmf) endpos={endpos}\n"
        return f"200 result=0 (timeout) endpos={endpos}\n"


def place_call(address: tuple[str, int], caller: Caller) -> CallLog:
    return FakeAsterisk(address, caller).run()
