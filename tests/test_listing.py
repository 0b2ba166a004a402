"""The one output layer of listings (cli_listing): Arabic wrapped before it is reordered,
columns mirrored for right-to-left reading, what people act on never cut, enums in Arabic."""

from __future__ import annotations

import unicodedata

import pytest

from cli_listing import (
    CUT_MARK,
    Column,
    cut,
    cut_path,
    display_width,
    more_line,
    table_lines,
    widths,
)
from cli_render import visual

COMPLAINT = "ما زال الانقطاع مستمراً منذ ثلاثة أيام ولم يتصل بي أحد من الشركة حتى الآن"
COLUMNS = (
    Column("reference", "المرجع", whole=True),
    Column("status", "الحالة"),
    Column("caller_number", "المتصل", whole=True),
    Column("created_at", "التاريخ", whole=True),
    Column("text", "الشكوى", text=True),
)
ROW = {
    "reference": "889862157",
    "status": "in_progress",
    "status_label_ar": "قيد المعالجة",
    "caller_number": "+218912345678",
    "created_at": "11-30 09:15",
    "text": COMPLAINT,
}


def base_letters(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def test_what_people_act_on_is_whole_at_80_columns_and_the_text_fills_the_rest() -> None:
    lines = table_lines(COLUMNS, [ROW], width=80, mode="visual")
    assert all(display_width(line) <= 80 for line in lines)
    shown = "\n".join(lines)
    for whole in ("889862157", "+218912345678", "11-30 09:15"):
        assert whole in shown
    # The complaint gets far more than the 12 characters it used to.
    sizes = widths(COLUMNS, [[Column.value(c, ROW) for c in COLUMNS]], 80)
    assert sizes[-1] >= 25


def test_arabic_is_wrapped_in_logical_order_then_reordered() -> None:
    lines = table_lines(COLUMNS, [ROW], width=80, mode="visual")
    first, second = lines[2], lines[3]
    # Mirrored: the first column (the reference) is drawn at the right edge...
    assert first.rstrip().endswith("889862157")
    # ...and the complaint at the left; its first line holds its first words.
    text_part = base_letters(first.strip().split("  ")[0])
    assert text_part.split()[-1] == "ام"  # "ما", drawn right-most of its cell
    assert "ام" not in base_letters(second).split()
    assert "\u064b" in first + second  # tanween kept


def test_logical_mode_keeps_the_order_for_pipes_and_bidi_terminals() -> None:
    lines = table_lines(COLUMNS, [ROW], width=200, mode="logical")
    assert lines[0].startswith("المرجع")
    assert lines[2].startswith("889862157  قيد المعالجة  +218912345678")
    assert COMPLAINT in lines[2]


def test_enums_are_shown_by_their_arabic_label_and_lists_joined() -> None:
    assert Column("status", "الحالة").value(ROW) == "قيد المعالجة"
    assert Column("status", "الحالة").value({"status": "open"}) == "open"
    assert Column("skills", "المهارات").value({"skills": ["billing", "network"]}) == (
        "billing، network"
    )
    assert Column("x", "س").value({}) == ""


def test_a_narrow_terminal_cuts_other_columns_visibly_never_the_whole_ones() -> None:
    long_status = ROW | {"status_label_ar": "بانتظار رد المتصل على الاستبيان الأخير"}
    lines = table_lines(COLUMNS, [long_status], width=80, mode="logical")
    assert "…" in lines[2]
    assert "+218912345678" in lines[2] and "889862157" in lines[2]


def test_stored_text_is_inert_in_a_cell() -> None:
    hostile = ROW | {"text": "\x1b]0;owned\x07 \u202e[link=x]y[/link]"}
    shown = "\n".join(table_lines(COLUMNS, [hostile], width=80, mode="visual"))
    assert "\x1b" not in shown and "\u202e" not in shown


@pytest.mark.parametrize(("text", "width", "expected"), [("abcdef", 4, "abc…"), ("ab", 4, "ab")])
def test_cut_marks_what_it_cuts(text: str, width: int, expected: str) -> None:
    assert cut(text, width) == expected


def test_marks_take_no_column_and_the_more_line_says_how_to_see_the_rest() -> None:
    assert display_width("يومياً") == 5
    assert "12 more" in more_line(12) and "--all" in more_line(12)


def test_a_path_is_cut_in_its_folders_keeping_the_file_name() -> None:
    """The defect "qa verify cuts the file name instead of the folder"."""
    path = "/var/spool/asterisk/monitor/2026/11/30/hotline-1732964112.5.wav"
    shown = cut_path(path, 30)
    assert shown.endswith("/hotline-1732964112.5.wav") and display_width(shown) == 30
    assert shown.startswith("/var") and CUT_MARK in shown
    columns = (Column("id", "رقم", whole=True), Column("path", "الملف", path=True))
    (_, _, row) = table_lines(columns, [{"id": 7, "path": path}], width=30, mode="logical")
    assert row.endswith(" …hotline-1732964112.5.wav")  # too narrow for a folder: the name


def test_an_international_number_keeps_its_plus_beside_arabic() -> None:
    assert visual("المتصل: +218912345678", "visual").startswith("+218912345678 :")


def test_a_crowded_listing_without_free_text_narrows_its_cuttable_columns() -> None:
    columns = (Column("number", "المتصل", whole=True), Column("note", "ملاحظة"))
    rows = [{"number": "+218912345678", "note": "x" * 200}]
    lines = table_lines(columns, rows, width=40, mode="logical")
    assert all(display_width(line) <= 40 for line in lines) and "+218912345678" in lines[2]
