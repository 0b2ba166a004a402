"""pyst2's AGI class, made safe to run many FastAGI calls in one process.

pyst2 0.5.1 speaks the AGI command set well, but (measured) it
- installs a SIGHUP handler in ``__init__``, which raises outside the main thread;
- writes debug lines (argv, the whole AGI environment) to stderr before the first command;
- quotes values without escaping them: a newline in ``set_variable`` starts a second AGI command;
- reads the FastAGI ``HANGUP`` line, or the end of input, as a reply: ``ValueError``, and every
  later reply is then read one command late;
- raises ``AGIUnknownError`` for ``511`` (dead channel) instead of a hang-up;
- raises ``AGIAppError`` for ``result=-1``, which Asterisk answers both to a hang-up during
  playback, SAY or GET DATA and to a missing sound file (here: CHANNEL STATUS tells which);
- loops forever on a ``520`` usage reply cut short, and on a single-line ``520``;
- returns ``'\\x00'`` from ``record_file`` when the recording ends on its timeout or on silence.

Asterisk answers RECORD FILE and GET DATA only when the caller is done: their replies are waited
for their own timeout on top of ``agi.command_timeout`` (a message may last minutes).

``HotlineAGI`` keeps pyst2's command methods and replaces the transport under them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Literal

from asterisk.agi import (
    AGI,
    AGIAppError,
    AGIError,
    AGIHangup,
    AGIInvalidCommand,
    AGIUnknownError,
    AGIUsageError,
    re_kv,
)

log = logging.getLogger(__name__)

# AGI has no escape for line breaks (a command is one line) nor for NUL: they become spaces.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_LINE = 64 * 1024
MAX_ENV_LINES = 500
DEAD_CHANNEL = 511


class CallerHungUp(AGIHangup):  # type: ignore[misc]  # pyst2 is untyped
    """The channel is gone: a HANGUP line, a 511 reply, a ``(hangup)`` result or end of input."""


class AsteriskSilent(AGIError):  # type: ignore[misc]
    """Asterisk did not answer a command within ``agi.command_timeout``."""


class UnsafeCommand(AGIError):  # type: ignore[misc]
    """A command line would carry a control character: refused, nothing sent."""


@dataclass(frozen=True)
class Reply:
    code: int
    text: str
    fields: dict[str, tuple[str, str]]

    @property
    def result(self) -> str:
        return self.fields.get("result", ("", ""))[0]

    @property
    def note(self) -> str:
        """The text in parentheses after the result: timeout, dtmf, hangup..."""
        return self.fields.get("result", ("", ""))[1]


@dataclass(frozen=True)
class RecordOutcome:
    ended_by: Literal["dtmf", "timeout", "hangup", "error"]
    digit: str  # the key that ended it, '' otherwise
    endpos: int  # samples written


def quote(value: object) -> str:
    """One AGI argument in double quotes; quotes and backslashes escaped, control chars dropped."""
    text = _CONTROL.sub(" ", str(value))
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class HotlineAGI(AGI):  # type: ignore[misc]  # pyst2 is untyped
    """pyst2's AGI over one FastAGI socket (binary file objects from ``socket.makefile``)."""

    def __init__(
        self, rfile: IO[bytes], wfile: IO[bytes], sock: socket.socket | None = None
    ) -> None:
        """``sock``: the socket under the files, whose timeout bounds each reply."""
        # Deliberately not AGI.__init__: it installs a SIGHUP handler and writes to stderr.
        self._rfile = rfile
        self._wfile = wfile
        self._sock = sock
        self._got_sighup = False  # pyst2's test_hangup() reads it; FastAGI never signals
        self.hung_up = False  # set when Asterisk sends the FastAGI HANGUP line
        self.env: dict[str, str] = {}
        self._get_agi_env()

    # -- transport ------------------------------------------------------------------------

    def _readline(self) -> str:
        try:
            raw = self._rfile.readline(MAX_LINE)
        except TimeoutError as exc:
            raise AsteriskSilent("Asterisk did not answer in time") from exc
        if not raw:
            self.hung_up = True
            raise CallerHungUp("Asterisk closed the connection")
        return raw.decode("utf-8", errors="replace").strip()

    def _get_agi_env(self) -> None:
        for _ in range(MAX_ENV_LINES):
            line = self._readline()
            if not line:
                return
            key, _, value = line.partition(":")
            if key.strip():
                self.env[key.strip()] = value.strip()
        raise AGIError("AGI environment never ended")

    def _quote(self, string: object) -> str:
        return quote(string)

    def send_command(self, command: str, *args: object) -> None:
        line = " ".join([command.strip(), *(str(arg) for arg in args)]).strip()
        if _CONTROL.search(line):
            raise UnsafeCommand(f"refusing to send a control character: {line!r}")
        log.debug("AGI >> %s", line)
        self._wfile.write(line.encode("utf-8") + b"\n")
        self._wfile.flush()

    def read_reply(self) -> Reply:
        """The next reply, skipping (and noting) the FastAGI HANGUP line."""
        line = self._readline()
        while line == "HANGUP":
            self.hung_up = True
            line = self._readline()
        log.debug("AGI << %s", line)
        match = re.match(r"(\d{3})([ -]?)(.*)", line)
        if match is None:
            raise AGIError(f"not an AGI reply: {line!r}")
        code, separator, text = int(match[1]), match[2], match[3]
        if separator == "-":
            # A multi-line reply (520 usage) ends with a line starting "<code> ".
            usage = [text]
            while not (line := self._readline()).startswith(f"{code} "):
                usage.append(line)
            text = "\n".join(usage)
        fields = {key: (value, data) for key, value, data in re_kv.findall(text)}
        return Reply(code, text, fields)

    def get_result(self) -> dict[str, tuple[str, str]]:
        reply = self.read_reply()
        if reply.code == 200:
            if reply.note == "hangup":
                raise CallerHungUp("hung up during the command")
            if reply.result == "-1":
                # Playback, SAY and GET DATA answer -1 both to a hang-up and to a missing sound.
                if self._channel_gone():
                    raise CallerHungUp("hung up during the command")
                raise AGIAppError("command failed (result=-1)")
            return {"result": ("", ""), **reply.fields}
        if reply.code == DEAD_CHANNEL:
            self.hung_up = True
            raise CallerHungUp(reply.text)
        if reply.code == 510:
            raise AGIInvalidCommand(reply.text)
        if reply.code == 520:
            raise AGIUsageError(reply.text)
        raise AGIUnknownError(reply.code, reply.text)

    def _channel_gone(self) -> bool:
        """Ask Asterisk whether the channel still exists: a dead one answers 511 (after the
        FastAGI HANGUP line), a live one its state."""
        if self.hung_up:
            return True
        self.send_command("CHANNEL STATUS")
        reply = self.read_reply()
        if reply.code == DEAD_CHANNEL:
            self.hung_up = True
        return self.hung_up

    @contextlib.contextmanager
    def _patience(self, seconds: float) -> Iterator[None]:
        """Wait ``seconds`` longer than usual for the next reply."""
        usual = self._sock.gettimeout() if self._sock is not None else None
        if self._sock is None or usual is None:
            yield
            return
        self._sock.settimeout(usual + seconds)
        try:
            yield
        finally:
            self._sock.settimeout(usual)

    def get_data(self, filename: str, timeout: int = 2000, max_digits: int = 255) -> str:
        with self._patience(timeout / 1000):
            return str(super().get_data(filename, timeout, max_digits))

    # -- commands whose pyst2 version misreads the reply ----------------------------------

    def record_file(
        self,
        filename: str,
        format: str = "wav",  # pyst2's keyword name, kept for callers of AGI
        escape_digits: str = "#",
        timeout: int = 60_000,
        offset: int = 0,
        beep: str = "beep",
        silence: int = 0,
    ) -> RecordOutcome:
        """RECORD FILE; how it ended and how much was written, hang-up included."""
        self.test_hangup()
        args: list[object] = [quote(filename), format, quote(escape_digits), timeout, offset]
        if beep:
            args.append(beep)
        if silence:
            args.append(f"s={silence}")
        self.send_command("RECORD FILE", *args)
        with self._patience(timeout / 1000):
            reply = self.read_reply()
        if reply.code == DEAD_CHANNEL:
            self.hung_up = True
            raise CallerHungUp(reply.text)
        if reply.code != 200:
            raise AGIError(f"RECORD FILE failed: {reply.code} {reply.text}")
        endpos_text = reply.fields.get("endpos", ("0", ""))[0]
        endpos = int(endpos_text) if endpos_text.isdigit() else 0
        result = reply.result
        if result == "-1":
            hangup = reply.note in ("hangup", "")
            return RecordOutcome("hangup" if hangup else "error", "", endpos)
        if result.isdigit() and int(result) > 0:
            return RecordOutcome("dtmf", chr(int(result)), endpos)
        return RecordOutcome("timeout", "", endpos)
