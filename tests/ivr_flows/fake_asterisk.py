"""A scripted Asterisk that drives the FastAGI server over TCP, answering like Asterisk 22.

The answering is the PBX simulator's own (``hotline.simulator.agi_peer``); this adds what the
tests ask of a finished call: the commands it received, read back as prompts, digits, events.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from hotline.simulator.agi_peer import AgiPeer, Caller, Take

__all__ = ["CallLog", "Caller", "Take", "place_call"]


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


def place_call(address: tuple[str, int], caller: Caller) -> CallLog:
    return CallLog(AgiPeer(address, caller).run())
