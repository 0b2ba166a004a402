from __future__ import annotations

import pytest

from casebook.arabic import normalise, normalise_words


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
