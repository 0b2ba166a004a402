"""Stored text made inert for a terminal (issue 17): the one helper, inert_text, and the
rendering edges of cli_render that use it."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_listing import Column, table_lines
from cli_render import highlighted_lines, visual, visual_lines
from inert_text import inert, json_text

ACTIVE = (
    [chr(code) for code in range(0x20) if chr(code) not in "\t\n\v\f"]
    + ["\x7f"]
    + [chr(code) for code in range(0x80, 0xA0)]
    + list("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    + ["\u2028", "\u2029", "\ud800", "\udfff"]
)


def acts_on_a_terminal(text: str) -> list[str]:
    return [char for char in text if char in ACTIVE or char == "\n"]


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("\x1b[2J", "\\x1b[2J"),
        ("\x9b2J", "\\x9b2J"),  # 8-bit CSI
        ("شكوى\u202eabc", "شكوى\\u202eabc"),
        ("12\u200f34\u200f56", "12\\u200f34\\u200f56"),
        ("a\u2066b\u2069", "a\\u2066b\\u2069"),
        ("line\nforged", "line\\nforged"),
        ("over\rwrite", "over\\rwrite"),
        ("a\tb", "a b"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("lone \ud800", "lone \\ud800"),
        ("sep\u2028x", "sep\\u2028x"),
    ],
)
def test_what_a_terminal_acts_on_is_shown_as_a_visible_escape(given: str, shown: str) -> None:
    assert inert(given) == shown
    shown.encode("utf-8")  # a terminal's encoder can write it


@pytest.mark.parametrize(
    "text",
    [
        "[/x]",
        "[link=https://evil]x[/link]",
        ":smile:",
        "انقطعت خدمة الإنترنت منذ ثلاثة أيام",
        "می\u200cخواهم",  # ZWNJ shapes Persian: not a control
        "ﻻ",
        "C:\\path",
        "",
    ],
)
def test_ordinary_text_and_markup_look_alikes_are_left_as_typed(text: str) -> None:
    assert inert(text) == text


def test_multiline_views_keep_line_breaks_and_show_a_lone_carriage_return() -> None:
    assert inert("one\r\ntwo\nthree\rfour", multiline=True) == "one\ntwo\nthree\\rfour"
    assert inert("a\x1b[2J\nb", multiline=True) == "a\\x1b[2J\nb"


@given(st.text())
def test_inert_text_holds_nothing_active_and_is_idempotent(text: str) -> None:
    once = inert(text)
    assert acts_on_a_terminal(once) == []
    assert inert(once) == once
    multiline = inert(text, multiline=True)
    assert [char for char in multiline if char in ACTIVE] == []
    assert inert(multiline, multiline=True) == multiline


@given(st.recursive(st.text() | st.integers() | st.none(), lambda inner: st.lists(inner)))
def test_json_text_is_the_same_data_with_nothing_active(data: object) -> None:
    written = json_text({"value": data}, indent=2)
    assert json.loads(written) == {"value": data}
    assert [char for char in written if char in ACTIVE] == []


def test_json_keeps_arabic_readable_and_escapes_the_override() -> None:
    written = json_text({"text": "شكوى\u202e\x1b[2J"})
    assert written == '{"text": "شكوى\\u202e\\u001b[2J"}'


def base_letters(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def test_bidi_reordering_runs_on_inert_text_so_an_override_cannot_steer_it() -> None:
    hijacked = "الفاتورة \u202eabc def"
    shown = visual(hijacked)
    # The override is text (its escape), reordered like any Latin run: the same as if the
    # escape had been typed, and "abc def" keeps its order.
    assert shown == visual("الفاتورة \\u202eabc def")
    assert "\u202e" not in shown and "abc def" in shown
    assert base_letters(shown).endswith("ةروتافلا")


def test_isolates_in_stored_text_are_shown_not_used_by_the_latin_bracket_rule() -> None:
    shown = visual("لا توجد\u2069 (no \u2066cases)")
    assert "\\u2069" in shown and "\\u2066" in shown
    assert "\u2066" not in shown and "\u2069" not in shown


def test_every_cli_render_edge_is_inert() -> None:
    hostile = "شكوى [/x]\x1b]0;title\x07\n\x1b[2J\u202e عاجلة"
    for mode in ("visual", "logical"):
        assert acts_on_a_terminal(visual(hostile, mode)) == []
        listed = table_lines(
            [Column("text", "ن", text=True)], [{"text": hostile}], width=80, mode=mode
        )
        assert all(acts_on_a_terminal(line) == [] for line in listed)
        for line in visual_lines(hostile, 12, mode):
            assert acts_on_a_terminal(line) == []
        words = [(word, index % 2 == 0) for index, word in enumerate(hostile.split(" "))]
        for text in highlighted_lines(words, 20, mode):
            assert acts_on_a_terminal(text.plain) == []
    # The complaint's own lines stay lines; the escape shows where the ESC was.
    assert len(visual_lines(hostile, 200, "logical")) == 2
    assert "\\x1b]0;title\\x07" in visual_lines(hostile, 200, "logical")[0]
