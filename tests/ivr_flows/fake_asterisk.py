"""A scripted Asterisk that drives the FastAGI server over TCP, answering like Asterisk 22.

The answering is the PBX simulator's own (``hotline.simulator.agi_peer``), with what the IVR
tests need of real Asterisk on top (measured on Asterisk 22.10.1):

- keys typed ahead: GET DATA returns as soon as its maximum is keyed or on ``#`` (never part of
  the result), and keys left over go to the next command that listens: they end the next
  GET DATA, cut a STREAM FILE short when they are among its escape digits (``200 result=<ASCII
  code> endpos=N``) and are lost otherwise (SAY DIGITS and RECORD FILE are given no escape
  digits here, so keys typed ahead are dropped there);
- keys pressed while a given sound plays (``Caller.during``);
- RECORD FILE creates its file when recording starts: a caller who says nothing leaves a
  44-byte WAV header.

It adds what the tests ask of a finished call: the commands it received, read back as prompts,
digits, events.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from hotline.simulator.agi_peer import AgiPeer, Take
from hotline.simulator.agi_peer import Caller as PeerCaller
from hotline.simulator.audio import caller_voice, write_wav

__all__ = ["VOICE", "CallLog", "Caller", "Take", "place_call"]

# What the callers say: a tone well above Asterisk's silence threshold (zeros are silence).
VOICE = caller_voice(None)

LISTENING = ("STREAM FILE", "GET DATA", "SAY DIGITS", "RECORD FILE")


@dataclass
class Caller(PeerCaller):
    takes: list[Take] = field(default_factory=lambda: [Take("dtmf", VOICE)])
    # Keys pressed while a sound plays, by sound name, e.g. {"hotline/welcome": "2"}.
    during: dict[str, str] = field(default_factory=dict)


class Asterisk(AgiPeer):
    caller: Caller

    def __init__(self, address: tuple[str, int], caller: Caller) -> None:
        super().__init__(address, caller)
        self._typed = ""  # keys pressed and not yet taken by a command

    def reply(self, command: str, hangup_now: bool) -> str:
        words = shlex.split(command)
        verb = " ".join(words[:2])
        if hangup_now or verb not in LISTENING:
            return super().reply(command, hangup_now)
        self._typed += self.caller.during.get(words[2], "")
        if verb == "GET DATA":
            return self._get_data(int(words[4]))
        if verb == "STREAM FILE":
            escape = words[3] if len(words) > 3 else ""
            while self._typed:
                key, self._typed = self._typed[0], self._typed[1:]
                if key in escape:
                    return f"200 result={ord(key)} endpos=4000\n"
        self._typed = ""
        return super().reply(command, hangup_now)

    def _get_data(self, max_digits: int) -> str:
        self._typed += self._keys.pop(0) if self._keys else ""
        keyed, ended = "", False
        while self._typed and not ended:
            key, self._typed = self._typed[0], self._typed[1:]
            if key == "#":
                ended = True
            else:
                keyed += key
                ended = len(keyed) >= max_digits
        return f"200 result={keyed}{'' if ended else ' (timeout)'}\n"

    def record(self, words: list[str], hangup_now: bool) -> str:
        reply = super().record(words, hangup_now)
        path = Path(f"{words[2]}.{words[3]}")
        if not os.path.lexists(path):
            write_wav(path, b"")
        return reply


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

    def settings_of(self, name: str) -> list[str]:
        """Every value a variable was set to, in order."""
        return [
            shlex.split(c)[3]
            for c in self.commands
            if c.startswith("SET VARIABLE") and shlex.split(c)[2] == name
        ]


def place_call(address: tuple[str, int], caller: Caller) -> CallLog:
    return CallLog(Asterisk(address, caller).run())
