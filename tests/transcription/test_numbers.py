"""Spoken numbers to digits: what is converted, what never is, and the words said kept."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transcription.conftest import manifest
from transcription.numbers import (
    LEXICON,
    NOT_NUMBERS,
    Converted,
    SpokenNumber,
    find_numbers,
    numbers_to_digits,
)


def digits(text: str) -> str:
    return numbers_to_digits(text).text


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("عشرين", "20"),
        ("ثلاثون", "30"),
        ("تلاتين", "30"),
        ("أحد عشر يوما", "11 يوما"),
        ("إحدى عشرة", "11"),
        ("اثنا عشر شهرا", "12 شهرا"),
        ("خمسة عشر", "15"),
        ("حداش", "11"),
        ("خمسطاش", "15"),
        ("تلتاشر", "13"),
        ("مئة وعشرون", "120"),
        ("مائة وخمسة", "105"),
        ("ميتين", "200"),
        ("مئتين وخمسين", "250"),
        ("ثلاثمائة وخمسون", "350"),
        ("تلتمية", "300"),
        ("ثلاث مية", "300"),
        ("سبع مية وخمسين", "750"),
        ("ألفين", "2000"),
        ("عشرة آلاف", "10000"),
        ("تلات تلاف", "3000"),
        ("ثلاثة آلاف وخمسمائة", "3500"),
        ("خمسين ألف", "50000"),
        ("مية ألف", "100000"),
        ("ألف وتسعمية وتسعة وتسعين", "1999"),
        ("ألفين خمسمية", "2500"),
        ("مليون وخمسمية ألف", "1500000"),
        ("مليونين", "2000000"),
    ],
)
def test_cardinals(said: str, written: str) -> None:
    assert digits(said) == written


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("خمسة وعشرين", "25"),
        ("خمسه وعشرون", "25"),
        ("واحد وثلاثين", "31"),
        ("اتنين وتسعين", "92"),
        ("تسعمية وتسعة وتسعين ألف وتسعمية وتسعة وتسعين", "999999"),
        # و before the first word stays where it was said
        ("وخمسين", "و50"),
        # و written apart joins the same way
        ("خمسة و عشرين", "25"),
        ("ألف و خمسمية دينار", "1500 دينار"),
        ("خمسة و ستة", "خمسة و ستة"),
        ("عشرين و", "20 و"),
    ],
)
def test_compounds_with_wa(said: str, written: str) -> None:
    assert digits(said) == written


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("صفر تسعة واحد اثنان ثلاثة أربعة خمسة ستة سبعة ثمانية", "0912345678"),
        ("صفر تسعه واحد اتنين تلاته اربعه خمسه سته سبعه تمانيه", "0912345678"),  # Libyan
        ("رقمي صفر تسعة اثنين", "رقمي 092"),
        ("زيرو خمسة", "05"),  # "zero five": two words, but led by a zero
        ("واحد اثنين ثلاثة", "123"),
        # grouped speech: each group's digits, in order
        ("صفر تسعة واحد اربعطاش خمسة وعشرين", "0911425"),
        # Arabic-Indic digits, alone or with words
        ("الرقم ٠٩١٢٣٤٥٦٧٨ من فضلك", "الرقم 0912345678 من فضلك"),
        ("٠٩١ اربعة خمسة ستة", "091456"),
        ("۰۹۲", "092"),
    ],
)
def test_digit_sequences_and_phone_numbers(said: str, written: str) -> None:
    assert digits(said) == written


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("خمسين دينار", "50 دينار"),
        ("دفعت خمسه وعشرون دينار ليبي", "دفعت 25 دينار ليبي"),
        ("ميتين وخمسين دينار", "250 دينار"),
        ("عشرة آلاف دينار", "10000 دينار"),
        ("ألف دينار", "1000 دينار"),
        ("مية دينار", "100 دينار"),
        ("خمسة دنانير", "5 دنانير"),  # a single small number before a currency word
        ("خمسمية درهم", "500 درهم"),
        ("عشرين قرش", "20 قرش"),
        ("بخمسين دينار.", "ب50 دينار."),
        ("الفاتورة ألفين وخمسمية دينار لكن دفعت ألف", "الفاتورة 2500 دينار لكن دفعت ألف"),
    ],
)
def test_amounts_with_currency(said: str, written: str) -> None:
    assert digits(said) == written


@pytest.mark.parametrize(
    ("said", "written"),
    [
        # hamza, ة/ه, ى/ي and alef variants fold onto the same number word
        ("ثلاثه الاف دينار", "3000 دينار"),
        ("اربعة وأربعين", "44"),
        ("احدي عشر", "11"),
        ("مائه", "مائه"),  # a lone hundred word stays (مية is also "water")
        ("مائه دينار", "100 دينار"),
        ("ثمانيا وثمانون", "88"),
        # one Whisper slip (doubled letter, ث/ت, long vowel) beside an exact number word
        ("خمسسين دينار", "50 دينار"),
        ("خمسة وعشريين", "25"),
        ("صفر تسعة واحد ثلاتين", "09130"),
        ("ثلاثة وتسعيين", "93"),
        ("صفر تسعة فمانية", "098"),  # ف for ث: heard in Whisper base's drafts of 8 kHz speech
        ("دفعت خمسينا دينار", "دفعت 50 دينار"),  # the ا of "دينارا" carried over
    ],
)
def test_whisper_misspellings(said: str, written: str) -> None:
    assert digits(said) == written


def test_a_misspelt_number_word_alone_stays_a_word() -> None:
    # Nothing exact beside it and no currency: not enough to write digits.
    assert digits("قال خمسسين") == "قال خمسسين"


@pytest.mark.parametrize(
    "word",
    # Real words one letter from a number word: what plain edit distance would have turned into
    # numbers. None is touched, even right after a number said digit by digit.
    [
        "الذين",
        "الفني",
        "ثانية",
        "ثواني",
        "ميزان",
        "ميدان",
        "تمرين",
        "تشرين",
        "تمكين",
        "أسنان",
        "أطنان",
        "ثلثين",
        "أتمنين",
        "الخميس",
        "متين",
        *sorted(NOT_NUMBERS),
    ],
)
def test_near_misses_are_not_numbers(word: str) -> None:
    assert digits(f"صفر تسعة واحد {word}") == f"091 {word}"
    assert digits(f"{word} دينار") == f"{word} دينار"


NUMBER_FREE = [
    "ولم يتصل بي أحد",
    "اتصلت بالدعم الفني أكثر من مرة ولم يرد علي أحد",
    "واحد من الموظفين أغلق الخط في وجهي",
    "جاني واحد من الشركة وقال إن المشكلة عندكم",
    "الراوتر لا يعمل منذ أول يوم",
    "هذه ثاني مرة أتصل فيها",
    "الخدمة مقطوعة من يوم الاثنين",
    "الخدمة مقطوعة منذ ثلاثة أيام",  # a lone small number: words, as an agent writes it
    "خمسة ستة أيام والنت مقطوع",
    "خمسة وستة",
    "انتظرت نص ساعة على الخط",
    "الميه مقطوعة عندنا في الحي",
    "ما فيه ميه",
    "ألف شكر لكم",
    "الرصيد صفر",
    "ست البيت اتصلت أمس",
    "الفني قال إن المشكلة من الشركة",
    "الذين اتصلوا بي لم يساعدوني",
    "العشرين دقيقة الأولى كانت الخدمة جيدة",
    "آلاف الزبائن عندهم نفس المشكلة",
    "مليون مرة قلت لكم",
    "جاني واحد ليبي من الشركة",
    # Whisper base on badly heard 8 kHz number sentences: garbled words, some near numbers
    "أو أقموا لطيفي أن يفضلت عجوال حيث من المسلوات أو بات خمس تتتت تتبات خمر ميار",
    "اتفروا بي اي انا رفلت ساك تتنان فمانية وكتخمس تتتنن",
    "حسم المينا في الريح مفتوى شرينا دي نارة بروينا ساغب",
    # ... and on the test set's tune half (ar44, ar52, ar53): real words where digits were said
    # (صيف for صفر, سبات for سبعة, جوال for واحد) and lone digit words, kept as words: turning
    # them into digits would write wrong numbers, not the ones said.
    "رضم بلخب الارضي صيف رفنان وعيد فلافت اثنان ربت مانية صيف وصيف رفيما لا جلو",
    "رقم ارش شكور السابق خمس تفنون سبات تساعد جوال حيل",
    "رب العرب فمانية حلافة واحدة نانظيفة خمسة ستوى لابن مكتوب خار",
]


@pytest.mark.parametrize("sentence", NUMBER_FREE)
def test_never_invents_digits(sentence: str) -> None:
    converted = numbers_to_digits(sentence)
    assert converted.text == sentence
    assert converted.numbers == ()


def test_the_committed_complaints_as_spoken_convert_to_what_an_agent_types() -> None:
    # The number-free ones come out unchanged (one says "ثلاثة أيام", kept as words); the others
    # give the digits the manifest's typed form holds (checked there against its numbers list).
    clips = [clip for clip in manifest() if clip["kind"] == "speech"]
    assert sum(1 for clip in clips if clip["numbers"]) >= 30
    assert sum(1 for clip in clips if not clip["numbers"]) >= 30
    for clip in clips:
        assert numbers_to_digits(clip["text"]).text == clip["typed"], clip["id"]


def test_spans_keep_the_words_said() -> None:
    said = "رقمي صفر تسعة واحد اتنين تلاته اربعه خمسه سته سبعه تمانيه ودفعت خمسين دينار"
    converted = numbers_to_digits(said)
    assert converted.text == "رقمي 0912345678 ودفعت 50 دينار"
    assert converted.numbers == (
        SpokenNumber("صفر تسعة واحد اتنين تلاته اربعه خمسه سته سبعه تمانيه", "0912345678"),
        SpokenNumber("خمسين", "50"),
    )


def test_spans_index_the_tokens_and_keep_prefix_and_punctuation() -> None:
    tokens = ["ودفعت", "وخمسين", "دينار،", "والباقي", "عشرين."]
    spans = find_numbers(tokens)
    assert [(s.first, s.end, s.text) for s in spans] == [(1, 2, "و50"), (4, 5, "20.")]
    assert [s.number for s in spans] == [SpokenNumber("وخمسين", "50"), SpokenNumber("عشرين.", "20")]


def test_punctuation_ends_a_run() -> None:
    # Two numbers a comma apart are two numbers, never one string of digits.
    assert digits("عشرين، ثلاثين") == "20، 30"
    assert digits("صفر تسعة واحد، اثنين ثلاثة أربعة") == "091، 234"


def test_ascii_digits_are_left_alone() -> None:
    assert numbers_to_digits("الفاتورة رقم 4411 من فضلك").numbers == ()


def test_marks_and_tatweel_do_not_hide_a_number() -> None:
    assert digits("خَمْسِينَ دينار") == "50 دينار"
    assert digits("خمســين دينار") == "50 دينار"


def test_every_lexicon_word_is_folded() -> None:
    # The lexicon is matched against normalise()'s output: an unfolded entry could never match.
    from casebook.arabic import normalise

    assert all(normalise(form) == form for form in LEXICON)


def test_spoken_numbers_are_json_ready() -> None:
    from dataclasses import asdict

    number = numbers_to_digits("خمسين دينار").numbers[0]
    assert json.loads(json.dumps(asdict(number))) == {"spoken": "خمسين", "digits": "50"}


# An independent speller for the property tests: how a caller may say n (MSA or Libyan forms).
SAY_UNITS: dict[int, list[str]] = {
    1: ["واحد"],
    2: ["اثنين", "اثنان", "اتنين"],
    3: ["ثلاثة", "تلاتة", "ثلاثه"],
    4: ["أربعة", "اربعة", "اربعه"],
    5: ["خمسة", "خمسه"],
    6: ["ستة", "سته"],
    7: ["سبعة", "سبعه"],
    8: ["ثمانية", "تمانية", "ثمانيه"],
    9: ["تسعة", "تسعه"],
}
SAY_TEENS: dict[int, list[str]] = {
    10: ["عشرة"],
    11: ["أحد عشر", "إحدى عشرة", "حداش"],
    12: ["اثنا عشر", "اثني عشر", "اطناش"],
    **{n: [f"{SAY_UNITS[n - 10][0]} عشر"] for n in range(13, 20)},
    15: ["خمسة عشر", "خمسطاش"],
}
SAY_TENS: dict[int, list[str]] = {
    20: ["عشرين", "عشرون"],
    30: ["ثلاثين", "تلاتين"],
    40: ["أربعين", "اربعين"],
    50: ["خمسين", "خمسون"],
    60: ["ستين"],
    70: ["سبعين", "سبعون"],
    80: ["ثمانين", "تمانين"],
    90: ["تسعين"],
}
SAY_HUNDREDS: dict[int, list[str]] = {
    100: ["مئة", "مائة", "مية"],
    200: ["مئتين", "مائتين", "ميتين"],
    300: ["ثلاثمائة", "تلتمية", "ثلاث مية"],
    400: ["أربعمائة", "ربعمية"],
    500: ["خمسمائة", "خمسمية", "خمس مية"],
    600: ["ستمائة", "ستمية"],
    700: ["سبعمائة", "سبعمية"],
    800: ["ثمانمائة", "تمنمية"],
    900: ["تسعمائة", "تسعمية"],
}


def say_below_1000(n: int, pick: st.DataObject) -> str:
    parts = []
    if n >= 100:
        parts.append(pick.draw(st.sampled_from(SAY_HUNDREDS[n // 100 * 100])))
    rest = n % 100
    if 10 <= rest < 20:
        parts.append(pick.draw(st.sampled_from(SAY_TEENS[rest])))
    elif rest:
        if rest % 10:
            parts.append(pick.draw(st.sampled_from(SAY_UNITS[rest % 10])))
        if rest >= 20:
            parts.append(pick.draw(st.sampled_from(SAY_TENS[rest - rest % 10])))
    return " و".join(parts)


def say(n: int, pick: st.DataObject) -> str:
    thousands, rest = divmod(n, 1000)
    parts = []
    if thousands == 1:
        parts.append("ألف")
    elif thousands == 2:
        parts.append(pick.draw(st.sampled_from(["ألفين", "ألفان"])))
    elif 3 <= thousands <= 10:
        parts.append(
            f"{say_below_1000(thousands, pick)} {pick.draw(st.sampled_from(['آلاف', 'الاف']))}"
        )
    elif thousands:
        parts.append(f"{say_below_1000(thousands, pick)} ألف")
    if rest:
        parts.append(say_below_1000(rest, pick))
    return " و".join(parts)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=999_999), st.data())
def test_every_number_said_in_full_becomes_its_digits(n: int, pick: st.DataObject) -> None:
    said = say(n, pick)
    converted = numbers_to_digits(f"دفعت {said} دينار")
    assert converted.text == f"دفعت {n} دينار", said
    assert converted.numbers == (SpokenNumber(said, str(n)),)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=9), min_size=3, max_size=12), st.data())
def test_every_digit_sequence_becomes_its_digits(
    digits_said: list[int], pick: st.DataObject
) -> None:
    words = [
        pick.draw(st.sampled_from(["صفر", "زيرو"]))
        if d == 0
        else pick.draw(st.sampled_from(SAY_UNITS[d]))
        for d in digits_said
    ]
    assert numbers_to_digits("رقمي " + " ".join(words)).text == "رقمي " + "".join(
        map(str, digits_said)
    )


# Words of the committed complaints that say no number, and words that only look like one.
NOT_NUMBER_WORDS = sorted(
    {word for clip in manifest() if not clip["numbers"] for word in clip["text"].split()}
    - {"ثلاثة"}  # "منذ ثلاثة أيام": a number, kept as a word because it stands alone
    | {"أحد", "أول", "مرة", "ثاني", "الثالث", "الاثنين", "نص", "ربع", "الذين", "الفني", "ثانية"}
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(NOT_NUMBER_WORDS), min_size=1, max_size=25))
def test_text_without_number_words_never_gets_digits(words: list[str]) -> None:
    text = " ".join(words)
    assert numbers_to_digits(text) == Converted(text, ())
