"""The AMI wire format, with no sockets: bytes -> ``AmiMessage`` and header pairs -> bytes.

The live connection (``hotline.ami``), the replay runner, the PBX simulator and the bench all
share this one framer, so what the tests exercise is what production runs.

What real Asterisk 22 sends (see DESIGN.md): a banner line, then blocks of ``Key: Value`` lines
ended by an empty line, CRLF. Keys repeat (``ChanVariable``), empty values keep the separator's
trailing space, values may be invalid UTF-8. Nothing here raises on bad input: malformed blocks
and lines are dropped and counted in ``ParseStats`` so the stream survives them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import cast

log = logging.getLogger(__name__)

LINE_END = b"\r\n"
BLOCK_END = b"\r\n\r\n"
MESSAGE_KINDS = frozenset({"Event", "Response", "Action"})
# A peer that never sends a block terminator must not grow our buffer without bound.
MAX_BLOCK_BYTES = 1 << 20
# Warnings are logged for the first few problems only; the counters keep the full tally.
LOGGED_PROBLEMS = 10


class AmiMessage:
    """One AMI block: an event, a response or an action, with every header in wire order.

    ``get`` answers the first occurrence of a key (Asterisk puts the channel's own headers
    first; a ``UserEvent`` body may repeat ``Uniqueid`` after them). ``get_all`` answers every
    occurrence, for keys such as ``ChanVariable`` that repeat.
    """

    __slots__ = ("_first", "headers", "kind", "name")

    def __init__(self, headers: tuple[tuple[str, str], ...]) -> None:
        self.headers = headers
        self.kind, self.name = headers[0]
        # dict() keeps the last of equal keys, so feeding it reversed keeps the first.
        self._first = dict(reversed(headers))

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._first.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self._first[key]

    def __contains__(self, key: str) -> bool:
        return key in self._first

    def get_all(self, key: str) -> list[str]:
        return [value for name, value in self.headers if name == key]

    @property
    def action_id(self) -> str | None:
        return self._first.get("ActionID")

    def variables(self, prefix: str = "ChanVariable") -> dict[str, str]:
        """``NAME=value`` headers starting with ``prefix`` as a dict (last one wins).

        Covers ``ChanVariable: NAME=value`` and OriginateResponse's
        ``ChanVariable(Local/…;1): NAME=value``; empty values come back as "".
        """
        found: dict[str, str] = {}
        for key, value in self.headers:
            if key.startswith(prefix):
                name, sep, val = value.partition("=")
                if sep:
                    found[name] = val
        return found

    def __repr__(self) -> str:
        return f"AmiMessage({self.kind}: {self.name}, {len(self.headers)} headers)"


@dataclass
class ParseStats:
    """Problems seen on the wire; each one was survived, none stopped the stream."""

    messages: int = 0
    malformed_blocks: int = 0
    malformed_lines: int = 0
    undecodable_blocks: int = 0
    truncated_blocks: int = 0

    @property
    def warnings(self) -> int:
        return (
            self.malformed_blocks
            + self.malformed_lines
            + self.undecodable_blocks
            + self.truncated_blocks
        )


def parse_block(text: str, stats: ParseStats) -> AmiMessage | None:
    """One block's text (without the blank line) -> message, or None if it is not one."""
    message = _well_formed(text)
    if message is None:
        headers = _headers_line_by_line(text, stats)
        message = AmiMessage(headers) if headers else None
    if message is None or message.kind not in MESSAGE_KINDS:
        stats.malformed_blocks += 1
        _warn(stats, "dropped a block that is neither event, response nor action: %r", text[:80])
        return None
    stats.messages += 1
    return message


def _well_formed(text: str) -> AmiMessage | None:
    """The message of a block whose every line is ``Key: value`` (what Asterisk sends), else
    None. The common case, in a few whole-block operations: ingest speed depends on it.
    Tuples, not lists: the garbage collector stops tracking tuples of strings, so thousands
    of messages a second do not make its full collections (tens of ms) more frequent."""
    lines = tuple([tuple(line.split(": ", 1)) for line in text.split("\r\n")])
    try:
        # Pairs once the message takes them: its dict() refuses a line without ": ", which
        # split into one part.
        message = AmiMessage(cast("tuple[tuple[str, str], ...]", lines))
    except ValueError:
        return None
    # A key must be non-empty, without a space or a colon (else the line is malformed, or its
    # key ends at an earlier colon): let the line-by-line parser decide those. Repeated keys
    # are equal, so checking each distinct key once checks them all.
    first = message._first
    keys = "\n".join(first)
    if "" in first or ":" in keys or " " in keys:
        return None
    return message


def _headers_line_by_line(text: str, stats: ParseStats) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            if line:
                stats.malformed_lines += 1
                _warn(stats, "dropped a line without a 'Key: Value' shape: %r", line[:80])
            continue
        # One space separates key and value; an empty value keeps that space on the wire.
        headers.append((key, value[1:] if value[:1] == " " else value))
    return tuple(headers)


def decode(block: bytes, stats: ParseStats) -> str:
    """A block's text; invalid UTF-8 and NUL bytes (which no PostgreSQL text can hold) are
    replaced by U+FFFD and counted. "replace" rather than surrogateescape: the text goes on to
    the database as UTF-8."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("utf-8", errors="replace")
    else:
        if "\x00" not in text:
            return text
    stats.undecodable_blocks += 1
    _warn(stats, "replaced invalid UTF-8 or NUL bytes in a block: %r", block[:80])
    return text.replace("\x00", "\ufffd")


def _decode_blocks(blocks: bytes, stats: ParseStats) -> list[str]:
    """Whole blocks (joined by blank lines) -> each block's text. Decoded in one go when all
    are valid UTF-8 without NUL (a multi-byte character never contains CR or LF, so that is
    each block decoded alone), else block by block so that only the bad ones are replaced and
    counted."""
    try:
        text: str | None = blocks.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return [decode(block, stats) for block in blocks.split(BLOCK_END)]
    return text.split("\r\n\r\n")


class AmiFramer:
    """Incremental framer: feed it bytes as they arrive in any chunking, get whole messages.

    With ``expect_banner`` the first CRLF-ended line is the server's banner (it has no blank
    line after it) and lands in ``banner``.
    """

    def __init__(self, *, expect_banner: bool, stats: ParseStats | None = None) -> None:
        self.stats = stats if stats is not None else ParseStats()
        self.banner: str | None = None
        self._expect_banner = expect_banner
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[AmiMessage]:
        buffer = self._buffer
        buffer += data
        start = 0
        if self._expect_banner:
            end = buffer.find(LINE_END)
            if end < 0:
                return []
            self.banner = decode(bytes(buffer[:end]), self.stats)
            self._expect_banner = False
            start = end + len(LINE_END)
        messages: list[AmiMessage] = []
        stats = self.stats
        end = buffer.rfind(BLOCK_END, start)
        if end >= 0:
            for text in _decode_blocks(bytes(buffer[start:end]), stats):
                if text:
                    message = parse_block(text, stats)
                    if message is not None:
                        messages.append(message)
            start = end + len(BLOCK_END)
        del buffer[:start]
        if len(buffer) > MAX_BLOCK_BYTES:
            stats.malformed_blocks += 1
            _warn(stats, "dropped %d bytes without a block end", len(buffer))
            buffer.clear()
        return messages

    def close(self) -> None:
        """The stream ended: a partial block left in the buffer is counted, not parsed."""
        if self._buffer.strip():
            self.stats.truncated_blocks += 1
            _warn(self.stats, "connection ended inside a block: %r", bytes(self._buffer[:80]))
        self._buffer.clear()


def iter_messages(data: bytes, *, expect_banner: bool, stats: ParseStats) -> Iterator[AmiMessage]:
    """Frame a whole recorded stream at once (replay files, tests)."""
    framer = AmiFramer(expect_banner=expect_banner, stats=stats)
    yield from framer.feed(data)
    framer.close()


def render(headers: Iterable[tuple[str, str]]) -> bytes:
    """Header pairs -> one CRLF block, as Asterisk writes it (``Key: `` for empty values).

    Surrogate escapes (``"\\udcff"``) become the raw bytes they stand for, so a test double can
    put invalid UTF-8 on the wire on purpose.
    """
    lines = [f"{key}: {value}" for key, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", errors="surrogateescape")


def _warn(stats: ParseStats, template: str, *args: object) -> None:
    if stats.warnings <= LOGGED_PROBLEMS:
        log.warning(template, *args)
