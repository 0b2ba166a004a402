"""Arabic in a terminal. Most terminals draw characters left to right and do not join Arabic
letters, so text is shaped and reordered into visual order line by line, after wrapping in
logical order (wrapping visual text would put a sentence's end on its first line).
Machine output (--json, --csv) always keeps the logical order stored in the database.

Every function here makes its text inert first (inert_text: no control, escape or bidi control
character reaches the terminal, each is shown as a visible escape), so the reordering below
works on text that cannot steer it, and stored text drawn through here is safe to show.

The shaping libraries and rich are imported where they are used: a command that prints JSON, or
no Arabic, never loads them (people's commands must start fast).
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from functools import cache
from typing import TYPE_CHECKING

from inert_text import inert

if TYPE_CHECKING:
    from arabic_reshaper import ArabicReshaper
    from rich.text import Text

# Arabic, Arabic Supplement, Extended-A and the presentation forms.
_RTL = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")


def has_rtl(text: str) -> bool:
    return bool(_RTL.search(text))


# A bracketed run with no Arabic in it, e.g. "(no cases)"; an escape inert() wrote; or an
# international number, whose "+" the bidi rules would move to its end beside Arabic.
_LATIN_IN_BRACKETS = re.compile(
    r"\([^()\u0600-\u06FF]*\)|\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|n|r)|\+\d+"
)
_ISOLATES = str.maketrans("", "", "\u2066\u2067\u2068\u2069")


def visual(text: str, mode: str = "visual") -> str:
    """One line, in the order the terminal must draw it (inert: a line break in it is shown as
    ``\\n``, a bidi control as its escape, so nothing in the text reorders the rest)."""
    text = inert(text)
    if mode != "visual" or not has_rtl(text):
        return text
    # python-bidi lacks the paired-bracket rule, so "(no cases)" after Arabic would come out as
    # ")no cases(": isolating the bracketed Latin run (LRI ... PDI) keeps its brackets upright.
    # So for an escape (\u202e), whose backslash would otherwise move to its other side.
    from bidi import get_display

    isolated = _LATIN_IN_BRACKETS.sub(lambda m: f"\u2066{m.group(0)}\u2069", text)
    drawn = str(get_display(_reshaper().reshape(isolated))).translate(_ISOLATES)
    # Reversing a line puts each mark before its letter; a terminal joins a mark to the cell
    # before it, so each run of marks goes back after its letter (the bidi rule L3, which
    # python-bidi does not apply).
    return _MARKS_BEFORE_LETTER.sub(r"\2\1", drawn)


# Harakat, tanween, shadda, sukun and the superscript alef: marks drawn on the letter before.
_MARKS_BEFORE_LETTER = re.compile(r"([\u064B-\u065F\u0670]+)(.)")


@cache
def _reshaper() -> ArabicReshaper:
    """Joins letters into their presentation forms, keeping the marks (the default drops
    them: "يومياً" would be shown "يوميا")."""
    from arabic_reshaper import ArabicReshaper

    return ArabicReshaper(configuration={"delete_harakat": False})


def visual_lines(text: str, width: int, mode: str = "visual") -> list[str]:
    """Wrap in logical order to ``width`` columns, then turn each line into visual order."""
    lines: list[str] = []
    for paragraph in inert(text, multiline=True).splitlines() or [""]:
        wrapped = textwrap.wrap(paragraph, width=max(width, 10)) or [""]
        lines.extend(visual(line, mode) for line in wrapped)
    return lines


def highlighted_lines(
    words: list[tuple[str, bool]], width: int, mode: str = "visual", style: str = "bold yellow"
) -> list[Text]:
    """Lines of (word, doubtful) pairs, wrapped in logical order, drawn in visual order, with the
    doubtful words styled. Shaping never crosses a space, so a word looks the same drawn alone
    or inside its line: that is how a doubtful word is found again after reordering."""
    from rich.text import Text

    lines: list[list[tuple[str, bool]]] = [[]]
    used = 0
    for given, doubtful in words:
        word = inert(given)
        if lines[-1] and used + 1 + len(word) > width:
            lines.append([])
            used = 0
        used += len(word) + (1 if lines[-1] else 0)
        lines[-1].append((word, doubtful))
    rendered = []
    for line in lines:
        doubtful_left = Counter(visual(word, mode) for word, doubtful in line if doubtful)
        text = Text()
        for position, token in enumerate(visual(" ".join(w for w, _ in line), mode).split(" ")):
            if position:
                text.append(" ")
            if doubtful_left[token] > 0:
                doubtful_left[token] -= 1
                text.append(token, style=style)
            else:
                text.append(token)
        rendered.append(text)
    return rendered
