"""Arabic in a terminal. Most terminals draw characters left to right and do not join Arabic
letters, so text is shaped and reordered into visual order line by line, after wrapping in
logical order (wrapping visual text would put a sentence's end on its first line).
Machine output (--json, --csv) always keeps the logical order stored in the database.
"""

from __future__ import annotations

import re
import textwrap

import arabic_reshaper
from bidi import get_display

# Arabic, Arabic Supplement, Extended-A and the presentation forms.
_RTL = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")


def has_rtl(text: str) -> bool:
    return bool(_RTL.search(text))


def visual(text: str, mode: str = "visual") -> str:
    """One line, in the order the terminal must draw it."""
    if mode != "visual" or not has_rtl(text):
        return text
    return str(get_display(arabic_reshaper.reshape(text)))


def visual_lines(text: str, width: int, mode: str = "visual") -> list[str]:
    """Wrap in logical order to ``width`` columns, then turn each line into visual order."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        wrapped = textwrap.wrap(paragraph, width=max(width, 10)) or [""]
        lines.extend(visual(line, mode) for line in wrapped)
    return lines


def cell(text: str | None, width: int, mode: str = "visual") -> str:
    """A table cell: cut in logical order (so an Arabic sentence keeps its beginning)."""
    if not text:
        return ""
    flat = " ".join(text.split())
    if len(flat) > width:
        flat = flat[: max(width - 1, 1)] + "…"
    return visual(flat, mode)
