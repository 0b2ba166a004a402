"""Arabic text folded for comparison and search, never for display: the one rule, used by
transcription (error rates, guards) and by the casebook's search (``search_terms``).

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


# The definite article and the one-letter words written joined to it (wa-, fa-, bi-, ka-,
# li-: لل is li- + al-): "الفاتوره", "بالفاتوره" and "للفاتوره" are found as "فاتوره".
_ARTICLES = ("وال", "فال", "بال", "كال", "لل", "ال")
# What must remain for a leading ال to be read as the article: "الم" (ألم, pain) stays whole.
_STEM_MIN = 2


def stem(word: str) -> str:
    """A normalised word without a leading article (and a joined conjunction or preposition)."""
    for article in _ARTICLES:
        if word.startswith(article) and len(word) - len(article) >= _STEM_MIN:
            return word[len(article) :]
    return word


# Words nearly every complaint has: indexed, each would list most cases for every query that
# names it, and finds nothing a person looks for. Written as people do; folded below.
_COMMON = "في من على إلى عن أن إن أو و ما لا يا هذا هذه ذلك تم كان مع قد لم لن هو هي أنا نحن"
COMMON_WORDS = frozenset(normalise_words(_COMMON))


def search_terms(text: str) -> list[str]:
    """The distinct terms a text is indexed under and a query is looked up by: each word
    folded (``normalise``) and without its article (``stem``), in order of first use; common
    words (``COMMON_WORDS``) are left out."""
    stems = (stem(word) for word in normalise_words(text) if word not in COMMON_WORDS)
    return list(dict.fromkeys(stems))
