from __future__ import annotations

from transcription.guards import (
    STOCK_PHRASES,
    allowed_latin_words,
    clean_words,
    compression_ratio,
    foreign_word,
)


def kept_text(text: str, allowed_latin: set[str] | None = None) -> str:
    words = text.split()
    cleaned = clean_words(words, STOCK_PHRASES, allowed_latin or set())
    return " ".join(words[index] for index in cleaned.kept)


def test_ordinary_complaint_is_untouched() -> None:
    text = "الإنترنت مقطوع منذ ثلاثة أيام، رقم الخط 0912345678"
    assert kept_text(text) == text


def test_stock_phrase_removed_even_with_diacritics_and_punctuation() -> None:
    assert kept_text("الخدمة مقطوعة صَلَّى اللهُ عليهِ وسلَّم.") == "الخدمة مقطوعة"
    assert kept_text("اشتركوا في القناة") == ""
    assert kept_text("ترجمة نانسي قنقر") == ""
    assert kept_text("النبي \ufdfa قال") == "النبي قال"  # the one-character ligature form


def test_stock_phrase_reported() -> None:
    cleaned = clean_words(["شكرا", "للمشاهدة"], STOCK_PHRASES, set())
    assert cleaned.kept == []
    assert cleaned.dropped == ["stock phrase 'شكرا للمشاهدة'"]


def test_operator_phrases() -> None:
    words = ["الخدمة", "سيئة", "تابعونا", "على", "الموقع"]
    cleaned = clean_words(words, [*STOCK_PHRASES, "تابعونا على الموقع"], set())
    assert [words[index] for index in cleaned.kept] == ["الخدمة", "سيئة"]


def test_foreign_scripts_dropped() -> None:
    assert kept_text("الفاتورة the list of the Greeks") == "الفاتورة"
    assert kept_text("الخدمة Спасибо מלאנש") == "الخدمة"


def test_latin_hot_words_survive() -> None:
    allowed = allowed_latin_words(["ADSL", "العنكبوت الليبي", "Wi-Fi"])
    assert allowed == {"adsl", "wi", "fi"}
    assert kept_text("خط ADSL مقطوع", allowed) == "خط ADSL مقطوع"
    assert not foreign_word("adsl.", allowed)
    assert foreign_word("VDSL", allowed)


def test_digits_and_punctuation_are_not_foreign() -> None:
    assert not foreign_word("15654،", set())
    assert not foreign_word("٢٠٢٤", set())


def test_word_loop_collapsed() -> None:
    text = "الخدمة الخدمة الخدمة الخدمة الخدمة سيئة"
    assert kept_text(text) == "الخدمة سيئة"


def test_short_repetition_in_speech_is_kept() -> None:
    assert kept_text("لا لا لا ما وصلني شي") == "لا لا لا ما وصلني شي"
    assert kept_text("بطيء جدا جدا") == "بطيء جدا جدا"


def test_phrase_loop_collapsed() -> None:
    text = "أن أستخدم الخط أن أستخدم الخط أن أستخدم الخط أن أستخدم الخط في البيت"
    cleaned = clean_words(text.split(), STOCK_PHRASES, set())
    assert " ".join(text.split()[index] for index in cleaned.kept) == "أن أستخدم الخط في البيت"
    assert cleaned.dropped == ["repetition loop 'ان استخدم الخط' x4"]


def test_loop_inside_a_word() -> None:
    assert kept_text("لبتليار ٢٢٢٢٢٢٢٢٢٢٢٢٢") == "لبتليار"
    assert kept_text("هههههههههههههه الخدمة") == "الخدمة"
    assert kept_text("اتصل على 0910000000") == "اتصل على 0910000000"


def test_compression_ratio() -> None:
    assert compression_ratio("") == 0.0
    assert compression_ratio("الفاتورة مرتفعة هذا الشهر") < 2.0
    assert compression_ratio("الخدمة " * 40) > 2.4
