"""Guards against Whisper's known ways of inventing text, applied to each decoded segment.

Whisper base on narrow-band Arabic fails in recognisable ways (measured on the test set and known
from the field): stock phrases from the subtitles it was trained on ("اشتركوا في القناة",
"صلى الله عليه وسلم"), words in another script, and loops that repeat a word or a phrase, or a
character inside one word, until the window ends. These functions are pure, so they are tested
without a model; ``pipeline`` applies them to the words of each segment.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from casebook.arabic import normalise

# Stock subtitle and broadcast phrases Whisper produces on silence, music or noise in Arabic.
STOCK_PHRASES = (
    "صلى الله عليه وسلم",
    "اشتركوا في القناة",
    "اشترك في القناة",
    "لا تنسوا الاشتراك في القناة",
    "شكرا للمشاهدة",
    "شكرا على المشاهدة",
    "ترجمة نانسي قنقر",
    "نانسي قنقر",
    "موسيقى",
)
# Arabic letters live in these blocks (base, supplement, extended-A, presentation forms A and B).
_ARABIC_BLOCKS = (
    (0x0600, 0x06FF),
    (0x0750, 0x077F),
    (0x08A0, 0x08FF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
)
# One to four characters repeated eight or more times inside one word ("ههههههههه", "٢٢٢٢٢٢٢٢"):
# a loop, not a word; eight leaves room for real numbers like 0910000000.
_CHAR_LOOP = re.compile(r"(.{1,4}?)\1{7,}")
MAX_LOOP_NGRAM = 8


@dataclass(frozen=True)
class Cleaned:
    kept: list[int]  # indices of the words that stay, in order
    dropped: list[str]  # what was removed and why, one line each


def compression_ratio(text: str) -> float:
    """zlib ratio of the UTF-8 text, as Whisper computes it: loops compress well."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def is_arabic_letter(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _ARABIC_BLOCKS)


def is_latin_letter(char: str) -> bool:
    return unicodedata.name(char, "").startswith("LATIN")


def foreign_word(word: str, allowed_latin: set[str]) -> bool:
    """A word with letters of another script (Latin only when not in ``allowed_latin``)."""
    for char in word:
        if not char.isalpha() or is_arabic_letter(char):
            continue
        if not is_latin_letter(char) or normalise(word) not in allowed_latin:
            return True
    return False


def allowed_latin_words(hot_words: Iterable[str]) -> set[str]:
    """Latin words from the configured hot words (e.g. "ADSL", "WiFi") survive the script guard."""
    return {
        word
        for phrase in hot_words
        for word in normalise(phrase).split()
        if any(is_latin_letter(char) for char in word)
    }


def clean_words(words: Sequence[str], phrases: Iterable[str], allowed_latin: set[str]) -> Cleaned:
    """Decide which of a segment's words (as displayed, punctuation attached) to keep."""
    dropped: list[str] = []
    kept: list[int] = []
    for index, word in enumerate(words):
        if foreign_word(word, allowed_latin):
            dropped.append(f"foreign word {word.strip()!r}")
        elif _CHAR_LOOP.search(normalise(word)):
            dropped.append(f"looping word {word.strip()!r}")
        else:
            kept.append(index)
    kept = _drop_phrases(words, kept, phrases, dropped)
    kept = _drop_repeats(words, kept, dropped)
    return Cleaned(kept, dropped)


def _comparable(words: Sequence[str], kept: list[int]) -> list[tuple[int, str]]:
    """(word index, normalised token) for the kept words; punctuation-only words vanish."""
    return [(index, token) for index in kept for token in normalise(words[index]).split()]


def _drop_phrases(
    words: Sequence[str], kept: list[int], phrases: Iterable[str], dropped: list[str]
) -> list[int]:
    tokens = _comparable(words, kept)
    remove: set[int] = set()
    for phrase in phrases:
        target = normalise(phrase).split()
        if not target:
            continue
        for start in range(len(tokens) - len(target) + 1):
            if _gram(tokens, start, len(target)) == target:
                first, last = tokens[start][0], tokens[start + len(target) - 1][0]
                remove.update(index for index in kept if first <= index <= last)
                dropped.append(f"stock phrase {phrase!r}")
    return [index for index in kept if index not in remove]


def _drop_repeats(words: Sequence[str], kept: list[int], dropped: list[str]) -> list[int]:
    """Collapse an n-gram repeated back to back (3+ times; 4+ for one word) to one copy.

    A caller may say "لا لا لا" or "جدا جدا"; a decoder loop says the same thing many more times.
    """
    tokens = _comparable(words, kept)
    remove: set[int] = set()
    start = 0
    while start < len(tokens):
        for size in range(1, MAX_LOOP_NGRAM + 1):
            gram = _gram(tokens, start, size)
            if len(gram) < size:
                break
            copies = 1
            while _gram(tokens, start + copies * size, size) == gram:
                copies += 1
            if copies >= (4 if size == 1 else 3):
                end = start + copies * size
                first_copy = {index for index, _ in tokens[start : start + size]}
                remove.update(index for index, _ in tokens[start + size : end])
                remove -= first_copy
                dropped.append(f"repetition loop {' '.join(gram)!r} x{copies}")
                start = end - 1
                break
        start += 1
    return [index for index in kept if index not in remove]


def _gram(tokens: list[tuple[int, str]], start: int, size: int) -> list[str]:
    return [token for _, token in tokens[start : start + size]]
