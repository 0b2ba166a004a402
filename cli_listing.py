"""One output layer for every listing (tables of cases, calls, callbacks, recordings, agents...).

A listing is a tuple of ``Column``s over the rows the server sent. At a terminal it is laid out
here, not by Rich, because Rich wraps what it is given and Arabic must be wrapped in logical order
*before* it is reordered for display (wrapped after, a sentence's first word lands on its second
line). So each cell is cut or wrapped in logical order, then turned into visual order line by
line (cli_render), then padded by its display width (combining marks such as tanween take no
column). In visual mode the columns are mirrored: the first column is drawn at the right, where
an Arabic reader starts, and cells are aligned to the right.

The columns people need to act on (a reference, a caller number, a date) are ``whole``: never
cut, whatever the width; the free text (the complaint) takes what is left, on at most two lines;
other columns are cut with a visible mark when the terminal is narrow. Every stored enum is shown
by its Arabic label, which the server sends beside the value as ``<key>_label_ar``.

Machine output (--json, --csv) is the server's data, in logical order, untouched.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cli_render as terminal
from inert_text import inert

GAP = 2  # spaces between columns
TEXT_LINES = 2  # lines a free-text cell may take in a listing
MIN_TEXT = 16  # below this a free-text column says too little to be worth its place
CUT_MARK = "…"

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    # Never cut: what a person reads back or types (reference, caller number, date).
    whole: bool = False
    # Free text: wrapped into what is left of the width.
    text: bool = False
    # A file's path: cut in its folders, never in the file's name (the part people look for).
    path: bool = False
    # The value as shown; by default the row's Arabic label for the key, else its value.
    shown: Callable[[Row], str] | None = None

    def value(self, row: Row) -> str:
        if self.shown is not None:
            return self.shown(row)
        label = row.get(f"{self.key}_label_ar")
        value = label if label else row.get(self.key)
        if value is None:
            return ""
        if isinstance(value, list):
            return "، ".join(map(str, value))
        return str(value)


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: combining marks (harakat, tanween) and format
    characters take none."""
    return sum(
        0 if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Cf") else 1
        for char in text
    )


def cut(text: str, width: int) -> str:
    """``text`` cut in logical order to ``width`` columns, the cut marked."""
    if display_width(text) <= width:
        return text
    kept = ""
    for char in text:
        if display_width(kept + char) > width - 1:
            break
        kept += char
    return kept + CUT_MARK


def cut_path(text: str, width: int) -> str:
    """A path cut to ``width`` columns from its middle: its start and its file name kept as
    long as they fit, the folders between given up first."""
    if display_width(text) <= width:
        return text
    head, sep, name = text.rpartition("/")
    if not sep or display_width(name) + 2 > width:
        # The file name alone is too wide: keep its end (the extension and the distinct part).
        return CUT_MARK + name[-(width - 1) :] if width > 1 else CUT_MARK
    room = width - display_width(name) - 2  # the mark and the slash before the name
    return f"{head[:room]}{CUT_MARK}/{name}"


def wrap(text: str, width: int, lines: int) -> list[str]:
    """``text`` wrapped in logical order to ``width`` columns (by display width: textwrap
    counts a mark as a column), at most ``lines`` lines, the last cut."""
    wrapped: list[str] = []
    current = ""
    for word in text.split():
        joined = f"{current} {word}" if current else word
        if current and display_width(joined) > width:
            wrapped.append(current)
            current = word
        else:
            current = joined
    wrapped.append(current)
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], " ".join(wrapped[lines - 1 :])]
    return [cut(line, width) for line in wrapped]


def widths(columns: Sequence[Column], cells: list[list[str]], width: int) -> list[int]:
    """Each column's width: whole columns as wide as their widest value; the free text what is
    left; the others their widest value, narrowed (never below the header) when it does not fit."""
    natural = [
        max([display_width(column.header), *(display_width(row[i]) for row in cells)])
        for i, column in enumerate(columns)
    ]
    chosen = list(natural)
    free = width - GAP * (len(columns) - 1)
    texts = [i for i, column in enumerate(columns) if column.text]
    flexible = [i for i, column in enumerate(columns) if not column.whole and not column.text]

    def left_for_text() -> int:
        return free - sum(chosen[i] for i in range(len(columns)) if i not in texts)

    def crowded() -> bool:
        if texts:
            return left_for_text() < MIN_TEXT * len(texts)
        return sum(chosen) > free

    # Narrow the widest flexible column first, down to its header, until the text has room
    # (or, with no text, until the row fits).
    while crowded():
        narrowable = [i for i in flexible if chosen[i] > display_width(columns[i].header)]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: chosen[i])
        chosen[widest] -= 1
    for i in texts:
        chosen[i] = min(natural[i], max(left_for_text() // len(texts), MIN_TEXT))
    return chosen


def _cell_lines(column: Column, value: str, width: int) -> list[str]:
    flat = " ".join(inert(value, multiline=True).split())
    if column.text:
        return wrap(flat, width, TEXT_LINES)
    if column.path:
        return [cut_path(flat, width)]
    return [flat if column.whole else cut(flat, width)]


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * max(width - display_width(text), 0)
    return space + text if right else text + space


def table_lines(
    columns: Sequence[Column], rows: Sequence[Row], *, width: int, mode: str
) -> list[str]:
    """The listing as lines for a terminal ``width`` columns wide (``mode``: visual or logical,
    see cli_render)."""
    values = [[column.value(row) for column in columns] for row in rows]
    sizes = widths(columns, [[" ".join(v.split()) for v in row] for row in values], width)
    mirrored = mode == "visual"

    def line(cells: list[str]) -> str:
        padded = [_pad(cell, size, mirrored) for cell, size in zip(cells, sizes, strict=True)]
        if mirrored:
            padded.reverse()
        joined = (" " * GAP).join(padded)
        return joined if mirrored else joined.rstrip()

    headers = zip(columns, sizes, strict=True)
    header = line([terminal.visual(cut(column.header, size), mode) for column, size in headers])
    lines = [header, "─" * min(display_width(header), width)]
    for row in values:
        cells = [
            _cell_lines(column, value, size)
            for column, value, size in zip(columns, row, sizes, strict=True)
        ]
        for index in range(max(len(cell) for cell in cells)):
            lines.append(
                line([terminal.visual(c[index], mode) if index < len(c) else "" for c in cells])
            )
    return lines


def more_line(more: int, exact: bool = True, after: str | None = None) -> str:
    """Said under a listing the server cut: how many more there are (``exact`` False: at least
    that many), and how to see them (``after``: the --after value of the next page, for
    listings paged by a key)."""
    count = f"{more:,}" if exact else f"{more:,}+"
    see = (
        f"--after {after} for the next page, --all for every one" if after else "--limit N or --all"
    )
    return f"و{count} أخرى ({count} more: {see})"
