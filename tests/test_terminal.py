"""Arabic shown right to left in a terminal that draws left to right."""

from __future__ import annotations

import unicodedata

from cli_listing import cut
from cli_render import has_rtl, visual, visual_lines

SENTENCE = "انقطعت خدمة الإنترنت عندي منذ ثلاثة أيام ولم يتصل بي أحد"


def base_letters(text: str) -> str:
    """Presentation forms back to base letters, so visual text can be compared."""
    return unicodedata.normalize("NFKC", text)


def test_visual_order_is_the_logical_order_reversed_and_shaped() -> None:
    shown = visual("شكوى رقم 123")
    assert shown != "شكوى رقم 123"
    # Numbers keep their left-to-right order; words appear in reverse order, letters joined.
    assert base_letters(shown) == "123 مقر ىوكش"
    assert any("\ufe70" <= char <= "\ufeff" for char in shown)  # joined (presentation) forms


def test_logical_mode_and_latin_text_are_left_alone() -> None:
    assert visual(SENTENCE, "logical") == SENTENCE
    assert visual("closed 12") == "closed 12"
    assert not has_rtl("closed") and has_rtl(SENTENCE)


def test_wrapping_happens_before_reordering_so_lines_read_top_down() -> None:
    lines = visual_lines(SENTENCE, 20)
    assert len(lines) > 1
    first_words = SENTENCE.split()[:2]
    # The first line shown holds the first words, drawn right-most (last in visual order).
    assert base_letters(lines[0]).split()[-2:] == [w[::-1] for w in reversed(first_words)]


def test_a_cell_is_cut_at_the_end_of_the_sentence_not_its_beginning() -> None:
    shown = visual(cut(SENTENCE, 12))
    assert len(shown) == 12
    assert base_letters(shown).endswith("تعطقنا")  # the first word, reversed for drawing
    assert shown.startswith("…")


def test_latin_in_brackets_keeps_its_brackets_upright() -> None:
    assert (
        base_letters(visual("لا توجد شكاوى (no cases)")) == "(no cases) ىواكش دجوت لا"
    )  # lam-alef is one ligature
    assert "\u2066" not in visual("الحالة (open)")


def test_tanween_and_other_marks_are_kept_on_their_letter() -> None:
    shown = visual("يومياً")
    assert "\u064b" in shown  # the default reshaping drops it: "يومياً" shown "يوميا"
    # Drawn after the alef it sits on (a terminal joins a mark to the cell before it).
    assert base_letters(shown)[:2] == "ا\u064b"
    assert base_letters(visual("مستمراً الآن")).endswith(" اًرمتسم")
