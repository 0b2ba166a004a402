"""Arabic text folded for comparison and search, never for display.

Whisper, agents and callers spell the same Arabic word in several ways: with or without short
vowels, with any of four alefs, ى or ي at the end, ة or ه, with or without hamza, digits in three
scripts. ``normalise`` maps all of them to one form so "فاتورة" finds "الفاتوره" and error rates
count real mistakes rather than spelling variants. The draft keeps the text as transcribed.
"""

from __future__ import annotations

import unicodedata

# Short vowels, tanween, shadda, sukun, dagger alef and the Quranic annotation marks.
_MARKS = [*range(0x0610, 0x061B), *range(0x064B, 0x0660), 0x0670, *range(0x06D6, 0x06EE)]
TATWEEL = "\u0640"
ALEFS = "أإآٱٲٳ"  # hamza above/below, madda, wasla, wavy hamza: all read as ا for matching
# Hamza is the least consistently written letter (callers and Whisper alike): its carriers become
# the plain letter and a bare ء is dropped.
HAMZA_CARRIERS = {"ؤ": "و", "ئ": "ي"}
HAMZA = "ء"
# Persian letters Whisper sometimes emits for Arabic ones.
PERSIAN = {"ی": "ي", "ک": "ك"}
ARABIC_INDIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
EASTERN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"

_TABLE: dict[int, str | None] = {
    **dict.fromkeys(_MARKS),
    ord(TATWEEL): None,
    ord(HAMZA): None,
    **{ord(alef): "ا" for alef in ALEFS},
    ord("ى"): "ي",
    ord("ة"): "ه",
    **{ord(carrier): plain for carrier, plain in HAMZA_CARRIERS.items()},
    **{ord(letter): plain for letter, plain in PERSIAN.items()},
    **{ord(digit): str(value) for value, digit in enumerate(ARABIC_INDIC_DIGITS)},
    **{ord(digit): str(value) for value, digit in enumerate(EASTERN_DIGITS)},
}


def _fold_char(char: str) -> str:
    category = unicodedata.category(char)
    if category[0] in "PSZ" or char.isspace():
        return " "  # punctuation and symbols separate words, like spaces
    if category == "Cf":
        return ""  # bidi and zero-width marks (RLM, ZWNJ, ALM) are invisible
    return char


def normalise(text: str) -> str:
    """Fold Arabic text to its comparison form: one spelling, single spaces, lower-case Latin."""
    # NFKC first: it turns presentation forms (ﻻ, ﺔ) into base letters the table knows and
    # composes alef + combining hamza into أ.
    folded = unicodedata.normalize("NFKC", text).translate(_TABLE).casefold()
    return " ".join("".join(_fold_char(char) for char in folded).split())


def normalise_words(text: str) -> list[str]:
    return normalise(text).split()
