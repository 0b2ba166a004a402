"""The Asterisk end of one FastAGI session, answering like Asterisk 22.

It connects to the FastAGI server, sends the AGI environment, then answers each command with
the lines real Asterisk writes (``200 result=…``, ``endpos=`` for playback and recording, the
FastAGI ``HANGUP`` line and ``511`` once the channel is dead), playing a scripted caller: keys
for GET DATA, audio for RECORD FILE, a hang-up at a chosen command. The PBX simulator drives
the real IVR with it; the IVR tests use it as their scripted Asterisk.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hotline.simulator.audio import write_wav

DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
# Commands res_agi still runs on a dead channel.
ALLOWED_WHEN_DEAD = ("SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "VERBOSE", "NOOP", "EXEC")
SAFETY_TIMEOUT = 20.0  # a safety net only: a healthy session never waits for it

# Told each command and the reply it got, on the session's thread.
Observer = Callable[[str, bytes], None]


@dataclass(frozen=True)
class Take:
    """One RECORD FILE: how it ends and what the caller says.

    ``audio`` is the caller's voice as 8 kHz 16-bit mono PCM, or a number of bytes of silence.
    """

    ends: Literal["dtmf", "timeout", "hangup"] = "dtmf"
    audio: bytes | int = 16_000
    # Real Asterisk writes "(hangup)"; the bare form must be understood as well.
    hangup_note: bool = True

    def pcm(self) -> bytes:
        return self.audio if isinstance(self.audio, bytes) else bytes(self.audio)


@dataclass
class Caller:
    uniqueid: str = "1763800000.101"
    callerid: str = "0912345678"
    linkedid: str | None = "1763800000.100"  # passed as agi_arg_1; None: only via GET VARIABLE
    keys: list[str] = field(default_factory=list)  # answers to GET DATA in order; "" = timeout
    takes: list[Take] = field(default_factory=lambda: [Take()])
    # Hang up when a command starting with this arrives (its reply is then the hang-up one).
    hangup_on: str | None = None
    channel: str = ""  # the channel running AGI; by default a PJSIP trunk channel

    @property
    def channel_name(self) -> str:
        return self.channel or f"PJSIP/trunk-{self.uniqueid}"


class AgiPeer:
    def __init__(
        self,
        address: tuple[str, int],
        caller: Caller,
        *,
        observe: Observer | None = None,
        timeout: float = SAFETY_TIMEOUT,
    ) -> None:
        self.address = address
        self.caller = caller
        self.commands: list[str] = []
        self.dead = False
        self._observe = observe
        self._timeout = timeout
        self._hangup_line_due = False
        self._keys = list(caller.keys)
        self._takes = list(caller.takes)
        self._sock: socket.socket | None = None

    @property
    def request(self) -> str:
        host, port = self.address
        return f"agi://{host}:{port}/hotline"

    def environment(self) -> bytes:
        c = self.caller
        lines = [
            "agi_network: yes",
            "agi_network_script: hotline",
            f"agi_request: {self.request}",
            f"agi_channel: {c.channel_name}",
            "agi_language: ar",
            f"agi_type: {c.channel_name.partition('/')[0]}",
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

    def run(self) -> list[str]:
        """The whole session, until the server hangs up; returns the commands received."""
        with socket.create_connection(self.address, timeout=self._timeout) as sock:
            self._sock = sock
            sock.sendall(self.environment())
            with sock.makefile("rb") as rfile:
                while line := rfile.readline():
                    command = line.decode().rstrip("\n")
                    self.commands.append(command)
                    reply = self.answer(command)
                    sock.sendall(reply)
                    if self._observe is not None:
                        self._observe(command, reply)
        return self.commands

    def close(self) -> None:
        """Cut the session from another thread (the PBX stops): ``run`` then returns."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

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
        if verb == "CHANNEL STATUS":
            return "200 result=6\n"  # AST_STATE_UP; a dead channel got 511 above
        if verb == "GET VARIABLE":
            if words[2] == "CHANNEL(linkedid)":
                return f"200 result=1 ({self.caller.linkedid or self.caller.uniqueid})\n"
            return "200 result=0\n"
        if words[0] == "EXEC":
            return "200 result=0\n"
        return "510 Invalid or unknown command\n"

    def record(self, words: list[str], hangup_now: bool) -> str:
        take = self._takes.pop(0) if self._takes else Take("timeout", 0)
        pcm = take.pcm()
        if pcm:
            write_wav(Path(f"{words[2]}.{words[3]}"), pcm)
        endpos = len(pcm) // 2
        if take.ends == "hangup" or hangup_now:
            self.dead, self._hangup_line_due = True, True
            note = " (hangup)" if take.hangup_note else ""
            return f"200 result=-1{note} endpos={endpos}\n"
        if take.ends == "dtmf":
            return f"200 result=35 (dtmf) endpos={endpos}\n"
        return f"200 result=0 (timeout) endpos={endpos}\n"
