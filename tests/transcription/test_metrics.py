from __future__ import annotations

import pytest

from transcription.metrics import (
    ErrorCount,
    NumberCount,
    cer,
    char_errors,
    edit_distance,
    number_count,
    wer,
    word_errors,
)


@pytest.mark.parametrize(
    ("ref", "hyp", "distance"),
    [("", "", 0), ("abc", "abc", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3)],
)
def test_edit_distance(ref: str, hyp: str, distance: int) -> None:
    assert edit_distance(ref, hyp) == distance
    assert edit_distance(list(ref), list(hyp)) == distance


def test_char_errors_ignore_spelling_variants() -> None:
    assert char_errors("الفاتورة مرتفعة", "الفاتوره، مرتفعه!").edits == 0


def test_char_errors_count_real_mistakes() -> None:
    counted = char_errors("الخدمة", "الخدمات")
    assert counted == ErrorCount(edits=2, length=6)
    assert counted.rate == pytest.approx(2 / 6)


def test_word_errors() -> None:
    assert word_errors("الخدمة مقطوعة تماما", "الخدمة مقطوعه") == ErrorCount(1, 3)


def test_rates_are_pooled_not_averaged() -> None:
    pairs = [("ab", ""), ("abcdefgh", "abcdefgh")]
    assert cer(pairs) == pytest.approx(2 / 10)
    assert wer([("a b", "a"), ("c d e f", "c d e f")]) == pytest.approx(1 / 6)


def test_empty_reference() -> None:
    assert ErrorCount(0, 0).rate == 0.0
    assert ErrorCount(3, 0).rate == 1.0


@pytest.mark.parametrize(
    ("said", "draft", "count"),
    [
        (["0912345678"], "رقمي 0912345678 والخط مقطوع", NumberCount(1, 1, 0)),
        # one digit wrong, one missing: the number is wrong, and the wrong one is extra
        (["0912345678"], "رقمي 0912345679", NumberCount(0, 1, 1)),
        (["0912345678"], "رقمي 091234567", NumberCount(0, 1, 1)),
        # split in two is not the number said
        (["0912345678"], "رقمي 091 2345678", NumberCount(0, 1, 2)),
        # left as words: nothing right, nothing extra
        (["50"], "دفعت خمسين دينار", NumberCount(0, 1, 0)),
        # Arabic-Indic digits are the same digits
        (["50"], "دفعت ٥٠ دينار", NumberCount(1, 1, 0)),
        # order does not matter; each number said is matched once
        (["75", "60"], "صار 60 بدل 75", NumberCount(2, 2, 0)),
        (["20", "20"], "20 يوم", NumberCount(1, 2, 0)),
        (["20"], "20 و20", NumberCount(1, 1, 1)),
        # digits in a number-free clip are all invented
        ([], "اتصلت 3 مرات", NumberCount(0, 0, 1)),
        ([], "", NumberCount(0, 0, 0)),
    ],
)
def test_number_count(said: list[str], draft: str, count: NumberCount) -> None:
    assert number_count(said, draft) == count


def test_number_accuracy_is_pooled() -> None:
    total = number_count(["50", "10"], "50 و11") + number_count(["0912345678"], "0912345678")
    assert total == NumberCount(right=2, said=3, extra=1)
    assert total.accuracy == pytest.approx(2 / 3)
    assert NumberCount(0, 0, 0).accuracy == 0.0
