"""Stored text made inert for a terminal: the one helper every view passes text through
(issue 17). Text people or the PBX typed (a caller's name, a complaint, a reason) must reach
the screen as what it says, never as something the terminal does.

What a terminal would act on is replaced by a visible escape naming the character, so the
reader sees that something was there and what (``\\x1b]0;title\\x07`` stays readable, and
does nothing):

- C0 controls (ESC and the sequences it starts, BEL, CR, backspace, ...), DEL and C1 (0x80-0x9F,
  of which 0x9B is an 8-bit CSI). A tab becomes a space (whitespace, nothing hidden); a line
  break is kept only where a view shows several lines (``multiline``), else shown as ``\\n``.
- The bidi controls that reorder what is read: embeddings and overrides (U+202A-202E) and
  isolates (U+2066-2069). The marks (LRM U+200E, RLM U+200F, ALM U+061C) too: though they
  cannot reverse letters, an invisible mark between digit groups reorders them
  ("12\\u200f34\\u200f56" is drawn 125634), and no source of this hotline's text (Whisper, an
  agent's editor, the PBX) needs them: Arabic is shaped and ordered for the terminal by
  cli_render, from the logical text.
- U+2028/U+2029 (line and paragraph separators: a line break, or a bidi paragraph, for some
  terminals) and lone surrogates (which a terminal's encoder cannot write at all: a crash).

Nothing else changes: Arabic, joiners (ZWJ/ZWNJ shape Arabic and Persian), emoji, brackets.
Rich markup (``[/x]``, ``[link=...]``) is not a character matter: the CLI's consoles never read
markup (cli.py), so square brackets are shown as typed.

``json_text``: JSON whose strings keep every character (the data as stored), with the same
characters written as ``\\uXXXX`` escapes, so printed to a terminal it is inert too.

Standard library only: the CLI (which must start fast and holds nothing of the server) and the
server's API (hotline/app/api.py) both import it.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Whitespace that is only layout: shown as a space.
_AS_SPACE = "\t\v\f"
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_SEPARATORS = "\u2028\u2029"
# Every character the helper replaces, newline included (``multiline`` keeps it).
_ACTIVE = re.compile(
    "[\x00-\x1f\x7f-\x9f" + _BIDI + _SEPARATORS + "\ud800-\udfff]",
)
# The same set for JSON: what json.dumps(ensure_ascii=False) leaves raw (it escapes C0 itself).
_ACTIVE_IN_JSON = re.compile("[\x7f-\x9f" + _BIDI + _SEPARATORS + "\ud800-\udfff]")


_NAMED = {"\n": "\\n", "\r": "\\r"}


def escape_of(char: str) -> str:
    """The visible form of one active character: ``\\n``, ``\\x1b``, ``\\x9b``, ``\\u202e``."""
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _single_line(match: re.Match[str]) -> str:
    char = match.group(0)
    return " " if char in _AS_SPACE else escape_of(char)


def _multiline(match: re.Match[str]) -> str:
    char = match.group(0)
    if char == "\n":
        return char
    return " " if char in _AS_SPACE else escape_of(char)


def inert(text: str | None, *, multiline: bool = False) -> str:
    """``text`` with nothing a terminal acts on (see the module's docstring). Idempotent:
    inert text passes through unchanged. ``multiline`` keeps line breaks (CR LF is one; a CR
    alone is shown, it would let a line overwrite itself)."""
    if not text:
        return ""
    if text.isascii() and text.isprintable():  # most text: nothing to look for
        return text
    if multiline:
        return _ACTIVE.sub(_multiline, text.replace("\r\n", "\n"))
    return _ACTIVE.sub(_single_line, text)


def is_inert(text: str, *, multiline: bool = False) -> bool:
    return inert(text, multiline=multiline) == text


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def json_text(
    data: Any, *, indent: int | None = None, compact: bool = False, allow_nan: bool = True
) -> str:
    """``data`` as JSON text, non-ASCII kept readable (Arabic as Arabic), and every character
    ``inert`` would replace written as a ``\\uXXXX`` escape: parsed, the values are exactly
    ``data``; printed, nothing in it acts on a terminal. ``compact``: no spaces (an HTTP body)."""
    separators = (",", ":") if compact else None
    text = json.dumps(
        data, ensure_ascii=False, indent=indent, separators=separators, allow_nan=allow_nan
    )
    return _ACTIVE_IN_JSON.sub(_json_escape, text)
