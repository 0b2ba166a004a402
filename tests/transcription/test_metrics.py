from __future__ import annotations

import pytest

from transcription.metrics import ErrorCount, cer, char_errors, edit_distance, wer, word_errors


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
