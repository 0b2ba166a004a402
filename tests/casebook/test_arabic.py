from __future__ import annotations

import pytest

from casebook.arabic import normalise, normalise_words, search_terms
from casebook.case_terms import terms_of
from casebook.models import TERM_CHARS


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        # tashkeel: short vowels, tanween, shadda, sukun, dagger alef
        ("الفَاتُورَةُ", "الفاتوره"),
        ("شُكْرًا", "شكرا"),
        ("مُشْكِلَةٌ", "مشكله"),
        ("الشَّرِكَة", "الشركه"),
        ("هٰذا", "هذا"),
        # tatweel
        ("الفـــاتورة", "الفاتوره"),
        # alef forms
        ("أريد", "اريد"),
        ("إلغاء", "الغا"),
        ("آخر", "اخر"),
        ("ٱلخدمة", "الخدمه"),
        # alef maqsura -> ya
        ("على", "علي"),
        ("مستشفى", "مستشفي"),
        # ta marbuta -> ha
        ("الشبكة", "الشبكه"),
        # hamza carriers and bare hamza
        ("مسؤول", "مسوول"),
        ("رئيس", "رييس"),
        ("بطيء", "بطي"),
        ("شيء", "شي"),
        # Persian letters Whisper sometimes writes
        ("کیف", "كيف"),
        # digits: Arabic-Indic and Eastern (Persian) to ASCII
        ("١٥٦٥٤", "15654"),
        ("۱۵۶۵۴", "15654"),
        ("رقم ٠٩١٢٣٤٥٦٧٨", "رقم 0912345678"),
        # punctuation and whitespace fold to single spaces
        ("نعم، شكرا؛ لماذا؟", "نعم شكرا لماذا"),
        ("  الخدمة \t\n مقطوعة  ", "الخدمه مقطوعه"),
        ("«الإنترنت» - بطيء!", "الانترنت بطي"),
        # bidi and zero-width marks vanish
        ("\u200fالخدمة\u200c\u061c", "الخدمه"),
        # presentation forms (from copied PDFs) become base letters
        ("\ufefb\ufe8e", "لاا"),
        # Latin is case-folded, kept
        ("WiFi ADSL", "wifi adsl"),
    ],
)
def test_each_rule(raw: str, folded: str) -> None:
    assert normalise(raw) == folded


def test_composed_and_decomposed_hamza_agree() -> None:
    # alef + combining hamza above (U+0654) is the same letter as precomposed أ
    assert normalise("ا\u0654ريد") == normalise("أريد") == "اريد"


def test_spelling_variants_meet() -> None:
    variants = ["الفاتورة", "الفاتوره", "الْفَاتُورَة", "الفاتـورة"]
    assert len({normalise(word) for word in variants}) == 1


def test_idempotent() -> None:
    text = "أُرِيدُ إلغاءَ الاشتراكِ، رقم ٣٤٥ على الفاتورة!"
    assert normalise(normalise(text)) == normalise(text)


def test_empty_and_punctuation_only() -> None:
    assert normalise("") == ""
    assert normalise(" ،؟ . ") == ""
    assert normalise_words("") == []


def test_words() -> None:
    assert normalise_words("الخدمة، مقطوعة") == ["الخدمه", "مقطوعه"]


@pytest.mark.parametrize(
    ("word", "term"),
    [
        ("الفاتورة", "فاتوره"),
        ("والفاتورة", "فاتوره"),
        ("بالفاتورة", "فاتوره"),
        ("للمشتركين", "مشتركين"),
        ("فاتورة", "فاتوره"),
        # Too short to hold an article: ألم (pain), والد (father) stay whole.
        ("ألم", "الم"),
        ("والد", "والد"),
    ],
)
def test_search_terms_drop_the_article(word: str, term: str) -> None:
    assert search_terms(word) == [term]


def test_search_terms_are_distinct_and_leave_common_words_out() -> None:
    assert search_terms("انقطاع في الكهرباء، وانقطاع على الكهرباء من أمس") == [
        "انقطاع",
        "كهربا",
        "وانقطاع",  # a bare و is kept: وقت begins with one too
        "امس",
    ]
    assert search_terms("في من على إلى") == []


def test_terms_are_cut_to_the_column_alike_for_text_and_query() -> None:
    long_word = "ب" * (TERM_CHARS + 10)
    assert terms_of(long_word) == ["ب" * TERM_CHARS] == terms_of(long_word + "ب")
