"""Spoken numbers as digits in the draft: "خمسين دينار" -> "50 دينار", "صفر تسعة واحد" -> "091".

An agent needs a complaint's numbers exactly (the caller's line or account number, an invoice
number, an amount), and Whisper writes them as words, often misspelt. ``numbers_to_digits(text)``
returns the text with the numbers as ASCII digits and, for each, the words that were said, so the
agent can always see what the draft's digits came from.

What is converted:

- cardinals, MSA and Libyan/colloquial forms, masculine and feminine: واحد..عشرة, teens (أحد عشر,
  خمسة عشر, حداش, خمسطاش), tens (عشرين/عشرون, تلاتين), hundreds (مئة/مائة/مية, ميتين, خمسمية,
  "ثلاث مية"), thousands and millions (ألف, ألفين, "عشرة آلاف", "تلات تلاف", مليون), compounds
  joined with و ("خمسة وعشرين" -> 25, "ألف وخمسمائة" -> 1500);
- digit-by-digit speech and grouped phone numbers: three or more numbers in a row, or two that
  start with zero, are one digit string ("صفر تسعة واحد اتنين ..." -> 0912..., "زيرو خمسة"
  -> 05, "٠٩١ اربعة خمسة" -> 09145); Arabic-Indic digits become ASCII digits;
- amounts: the number before a currency word (دينار, درهم, قرش, ...) is converted even when it
  is a single small word ("خمسة دينار" -> "5 دينار"); the currency word stays as said.

Never inventing digits comes first, so the converter is conservative:

- a lone number word up to ten, and a lone ميه/ألف/مليون/صفر, stay words ("ولم يتصل بي أحد",
  "واحد من الموظفين", "ثلاثة أيام", "الميه مقطوعة", "ألف شكر") unless a currency word follows;
  "أحد" is a number only in "أحد عشر"; ordinals (أول, الثالث), "مرة", words with the article (
  "الاثنين", "العشرين") and fractions (نص, ربع) are never numbers;
- "و" inside a number joins its parts only in the order Arabic says them (units before tens,
  each place once); "خمسة وستة" stays words;
- Whisper's spelling variants are matched after ``normalise``'s folding (hamza, alef forms,
  ة/ه, ى/ي, marks), plus the accusative ا ending (خمسا); beyond that, a word of five letters or
  more one Whisper slip away from exactly one number word (a sound-alike letter, a long vowel
  added or dropped, a doubled letter: "خمسسين", "ثلاتين") is taken as it, but only next to a
  number matched exactly or before a currency word, and never a word of ``NOT_NUMBERS``. Plain
  edit distance was tried and refused: one edit turns الذين, الفني, ثانية, ميزان and تمرين
  into numbers.

Libraries checked on PyPI (2026-11) before writing this:

- arabic-itn 0.1.0 (MIT, standard library only): close in spirit, but a single release a month
  old; it rewrites phone numbers beginning 05 as Saudi +966 numbers and درهم as AED (a Libyan
  dirham is a thousandth of a dinar), converts dates, times, e-mail addresses and order IDs we
  did not ask for, leaves "مية دينار" as words (دينار is not among its currencies), has no
  tolerance for Whisper's misspellings beyond hamza and ة, and can only be extended by patching
  its private tables.
- PyArabic 0.6.15 (``number.text2number``): GPL-3; MSA only ("تلاتين" -> 0, "ميتين وخمسين"
  -> 50) and it adds up digit sequences ("صفر تسعة واحد اثنان" -> 12).
- nemo-text-processing 1.2.0 (Apache-2.0): its Arabic ITN has cardinal, decimal, fraction,
  measure and money grammars but no telephone one, MSA forms, and needs pynini/OpenFst (a large
  native dependency for one function).
- text2num 3.1.0, word2number-i18n 1.2.0, numerizer: no Arabic.
- puckling (a Duckling port with Arabic): pip finds no release of it installable here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from casebook.arabic import normalise

# --- the vocabulary, written in normalise()'s folded spelling --------------------------------

UNITS: dict[int, tuple[str, ...]] = {
    1: ("واحد", "واحده"),
    2: ("اثنين", "اثنان", "اتنين", "اتنان", "ثنين", "اثنتين", "اثنتان", "اتنتين", "ثنتين"),
    3: ("ثلاثه", "ثلاث", "تلاته", "تلات", "ثلاثا"),
    4: ("اربعه", "اربع", "اربعا"),
    5: ("خمسه", "خمس", "خمسا"),
    6: ("سته", "ست", "ستا"),
    7: ("سبعه", "سبع", "سبعا"),
    8: ("ثمانيه", "ثماني", "ثمان", "ثمانيا", "تمانيه", "تماني", "تمنيه", "ثمنيه", "تمن"),
    9: ("تسعه", "تسع", "تسعا"),
}
ZERO = ("صفر", "زيرو")
TEN = ("عشره", "عشر", "عشرا")
# Units that exist only before عشر: أحد عشر, إحدى عشرة, اثنا عشر.
TEEN_UNITS = {"احد": 1, "احدي": 1, "اثنا": 2, "اثني": 2, "اثنتا": 2, "اثنتي": 2, "اتنا": 2}
# Colloquial fused teens, from each unit's stem and the -taash endings (حداش, خمسطاش, تلتاشر).
TEEN_STEMS: dict[int, tuple[str, ...]] = {
    11: ("حدا", "احدا", "احد"),
    12: ("اتنا", "اطنا", "اثنا", "طنا"),
    13: ("تلت", "تلط", "ثلاث", "ثلط", "تلات"),
    14: ("اربع", "اربعت", "ربع", "اربعط"),
    15: ("خمس", "خمست", "خمسط", "خمصط"),
    16: ("ست", "سط", "سد"),
    17: ("سبع", "سبعت", "سبعط"),
    18: ("تمن", "تمنت", "ثمن", "ثمنط", "تمنط", "ثمانت"),
    19: ("تسع", "تسعت", "تسعط"),
}
TEEN_ENDINGS = ("تاش", "طاش", "تاشر", "طاشر", "اش", "اشر", "ش", "شر", "طعش", "تعش")
TENS: dict[int, tuple[str, ...]] = {
    20: ("عشرين", "عشرون"),
    30: ("ثلاثين", "ثلاثون", "تلاتين", "تلاثين"),
    40: ("اربعين", "اربعون", "ربعين"),
    50: ("خمسين", "خمسون"),
    60: ("ستين", "ستون"),
    70: ("سبعين", "سبعون"),
    80: ("ثمانين", "ثمانون", "تمانين", "ثمنين"),
    90: ("تسعين", "تسعون"),
}
HUNDRED = ("مئه", "مائه", "ميه", "مايه", "ميا", "مئا")
# Not متين ("solid"), nor تمنين for 80 ("you wish"): real words that Libyans also say for numbers.
TWO_HUNDRED = ("مئتين", "مئتان", "مائتين", "مائتان", "ميتين", "ميتان")
# 300..900 fused: a unit's stem with a hundred word (ثلاثمائة, تلتمية, خمسميه).
HUNDRED_STEMS: dict[int, tuple[str, ...]] = {
    3: ("ثلاث", "ثلث", "تلت", "تلات"),
    4: ("اربع", "ربع"),
    5: ("خمس",),
    6: ("ست",),
    7: ("سبع",),
    8: ("ثمان", "ثمن", "تمن", "تمان"),
    9: ("تسع",),
}
THOUSAND = ("الف",)
THOUSANDS = ("الاف", "الوف", "تلاف", "تالاف")  # after 3..10: "ثلاثة آلاف", "تلات تلاف"
TWO_THOUSAND = ("الفين", "الفان")
MILLION = ("مليون",)
MILLIONS = ("ملايين", "ملاين")
TWO_MILLION = ("مليونين", "مليونان")
# An amount's unit: a single small number before one of these is still converted.
CURRENCY = frozenset(
    normalise(word)
    for word in [
        *("دينار", "دنانير", "دينارا", "دينارات"),  # not ليبي: "واحد ليبي" is a person
        *("درهم", "دراهم", "درهما", "قرش", "قروش", "قرشا"),
        *("دولار", "دولارات", "دولارا", "يورو"),
    ]
)
# Real words that are one Whisper slip away from a number word (found by running every stem of
# Debian's hunspell-ar dictionary through the matcher): never read as a misspelt number.
NOT_NUMBERS = frozenset(
    normalise(word)
    for word in [
        *("أسنان", "أسنين", "أطنان", "ثلثين", "تلتين", "ألفينا", "سماني", "ميطان", "ثمانه"),
        *("عشريني", "ثلاثيني", "أربعيني", "خمسيني", "ستيني", "سبعيني", "ثمانيني", "تسعيني"),
        *("أتمنين", "تتمنين", "يتمنين", "نتمنين", "تمنين", "تمنينا", "تمنيا", "تساعين"),
        *("تساعون", "اتنشر", "أفنان", "أفنين", "تلافين", "تلافينا", "سطينا"),
    ]
)
# The letters Whisper confuses in number words (it hears narrow-band speech; Libyans say ت for ث).
SOUND_ALIKE = frozenset(
    frozenset(pair) for pair in ("تث", "فث", "تط", "سص", "سث", "دذ", "دض", "زذ", "ظض", "ها", "قك")
)
LONG_VOWELS = "اوي"
PREFIXES = ("و", "ب", "وب")  # "وخمسين", "بخمسين دينار": kept in front of the digits
FUZZY_MIN_LENGTH = 5

_DIGIT_TOKEN = re.compile(r"[0-9٠-٩۰-۹]+")
_TRAILING = re.compile(r"[.,،؛;:!?؟…\-–—]+$")


@dataclass(frozen=True)
class Word:
    """One number word: its value and what it does in a number."""

    value: int
    # zero, unit, ten, teen, tens, hundred (bare مئة), hundreds, multiplier (ألف, مليون),
    # plural_multiplier (آلاف, ملايين), dual_multiplier (ألفين, مليونين)
    kind: str
    weak: bool  # alone it is probably not a number (or not one an agent would write as digits)


def _lexicon() -> dict[str, Word]:
    words: dict[str, Word] = {}

    def add(forms: Sequence[str], word: Word) -> None:
        for form in forms:
            words.setdefault(normalise(form), word)

    add(ZERO, Word(0, "zero", True))
    for value, forms in UNITS.items():
        add(forms, Word(value, "unit", True))
    add(TEN, Word(10, "ten", True))
    for value, stems in TEEN_STEMS.items():
        add(
            [stem + ending for stem in stems for ending in TEEN_ENDINGS], Word(value, "teen", False)
        )
    for value, forms in TENS.items():
        # and with the ا Whisper carries over from a following "دينارا" (خمسينا)
        add(
            [*forms, *(form + "ا" for form in forms if form.endswith("ين"))],
            Word(value, "tens", False),
        )
    add(HUNDRED, Word(100, "hundred", True))
    add(TWO_HUNDRED, Word(200, "hundreds", False))
    for value, stems in HUNDRED_STEMS.items():
        add(
            [stem + hundred for stem in stems for hundred in HUNDRED],
            Word(value * 100, "hundreds", False),
        )
    add(THOUSAND, Word(1000, "multiplier", True))
    add(THOUSANDS, Word(1000, "plural_multiplier", True))
    add(TWO_THOUSAND, Word(2000, "dual_multiplier", False))
    add(MILLION, Word(1_000_000, "multiplier", True))
    add(MILLIONS, Word(1_000_000, "plural_multiplier", True))
    add(TWO_MILLION, Word(2_000_000, "dual_multiplier", False))
    return words


LEXICON = _lexicon()
_TEN_FORMS = frozenset(normalise(form) for form in TEN)


@dataclass(frozen=True)
class SpokenNumber:
    """One number in the draft: the words Whisper wrote, and the digits the draft now has."""

    spoken: str
    digits: str


@dataclass(frozen=True)
class NumberSpan:
    """Tokens ``first`` to ``end`` (exclusive) of the input are replaced by ``text``."""

    first: int
    end: int
    text: str  # what stands in the draft: prefix, digits, trailing punctuation
    number: SpokenNumber


@dataclass(frozen=True)
class Converted:
    """A text with its spoken numbers as digits, and each number's words as said."""

    text: str
    numbers: tuple[SpokenNumber, ...]


def numbers_to_digits(text: str) -> Converted:
    """The text with its spoken numbers as digits, and what each was said as."""
    tokens = text.split()
    spans = find_numbers(tokens)
    return Converted(" ".join(replace_spans(tokens, spans)), tuple(s.number for s in spans))


def replace_spans(tokens: Sequence[str], spans: Sequence[NumberSpan]) -> list[str]:
    """The tokens with each span's tokens replaced by its text."""
    out: list[str] = []
    at = 0
    for span in spans:
        out += tokens[at : span.first]
        out.append(span.text)
        at = span.end
    return out + list(tokens[at:])


# --- reading tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    prefix: str  # a conjunction or preposition glued to the word (و, ب)
    word: Word | None
    digits: str | None  # the token is written in digits
    fuzzy: bool  # matched one edit away, not exactly
    trailing: str  # punctuation after the word: ends a run of numbers
    folded: str  # the word without prefix and punctuation, folded (digits: as written)


def _read(token: str) -> _Token:
    trailing_match = _TRAILING.search(token)
    trailing = trailing_match.group() if trailing_match else ""
    bare = token[: len(token) - len(trailing)] if trailing else token
    if _DIGIT_TOKEN.fullmatch(bare):
        return _Token("", None, normalise(bare), False, trailing, bare)
    folded = normalise(bare)
    if " " in folded or not folded:  # punctuation inside: not a plain word
        return _Token("", None, None, False, trailing, folded)
    for prefix in ("", *PREFIXES):
        if not folded.startswith(prefix) or len(folded) - len(prefix) < 2:
            continue
        rest = folded[len(prefix) :]
        if rest in LEXICON or (rest in TEEN_UNITS and prefix in ("", "و")):
            return _Token(
                bare[: len(prefix)] if prefix else "",
                LEXICON.get(rest),
                None,
                False,
                trailing,
                rest,
            )
    for prefix in ("", "و"):
        rest = folded[len(prefix) :]
        if folded.startswith(prefix) and (fuzzy := _fuzzy(rest)) is not None:
            return _Token(bare[: len(prefix)], fuzzy, None, True, trailing, rest)
    return _Token("", None, None, False, trailing, folded)


def _fuzzy(folded: str) -> Word | None:
    """The one number word ``folded`` is a Whisper slip away from, if there is exactly one."""
    if len(folded) < FUZZY_MIN_LENGTH or folded in NOT_NUMBERS or folded in CURRENCY:
        return None
    near = {
        word
        for form, word in LEXICON.items()
        if len(form) >= FUZZY_MIN_LENGTH and _one_edit(folded, form)
    }
    return near.pop() if len(near) == 1 else None


def _one_edit(a: str, b: str) -> bool:
    """One of the slips Whisper makes in number words apart: a sound-alike letter (ث for ت, ص
    for س, ...), a long vowel added or dropped, a letter doubled or undoubled."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 and frozenset((a[diff[0]], b[diff[0]])) in SOUND_ALIKE
    short, long = (a, b) if len(a) < len(b) else (b, a)
    if len(long) != len(short) + 1:
        return False
    for i, extra in enumerate(long):
        if long[:i] + long[i + 1 :] == short:
            doubled = (i > 0 and long[i - 1] == extra) or (
                i + 1 < len(long) and long[i + 1] == extra
            )
            return extra in LONG_VOWELS or doubled
    return False


# --- one cardinal ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    first: int
    end: int
    digits: str
    weak: bool  # one weak word alone
    fuzzy: bool  # some word of it matched one edit away
    exact: bool  # some word of it matched exactly (or was written in digits)


class _Group:
    """The hundreds, tens and units of the part below the current multiplier."""

    def __init__(self) -> None:
        self.hundreds = self.tens = self.units = 0

    @property
    def value(self) -> int:
        return self.hundreds + self.tens + self.units

    def add(self, word: Word) -> bool:
        """Fill the word's place if Arabic order allows it here; False if it does not."""
        if word.kind in ("hundreds", "hundred") and self.value == 0:
            self.hundreds = word.value
        elif word.kind == "unit" and not (self.units or self.tens):
            self.units = word.value
        elif word.kind in ("ten", "teen") and not (self.units or self.tens):
            self.tens = word.value
        elif word.kind == "tens" and not self.tens:
            self.tens = word.value  # after its units: "خمسة وعشرين"
        else:
            return False
        return True


def _cardinal(tokens: Sequence[_Token], first: int) -> _Chunk | None:
    """The longest number that starts at ``first`` (its prefix, if any, stays before it)."""
    start = tokens[first]
    if start.digits is not None:
        return _Chunk(first, first + 1, start.digits, False, False, True)
    if start.word is None and start.folded not in TEEN_UNITS:
        return None
    if start.word is not None and start.word.kind == "zero":
        return _Chunk(first, first + 1, "0", True, start.fuzzy, not start.fuzzy)
    total, ceiling, group = 0, 10**12, _Group()
    at, used = first, list[int]()
    while at < len(tokens):
        if at > first and tokens[at - 1].trailing:
            break
        # "خمسة و عشرين": a و written apart joins the next word like a و written on it.
        apart = at > first and _lone_wa(tokens[at]) and at + 1 < len(tokens)
        here = at + 1 if apart else at
        token = tokens[here]
        joined = apart or (at > first and token.prefix == "و")
        if here > first and token.prefix and (apart or token.prefix != "و"):
            break  # one و joins; any other letter glued on starts something else
        teen_unit = TEEN_UNITS.get(token.folded) if token.prefix in ("", "و") else None
        following = tokens[here + 1] if here + 1 < len(tokens) else None
        ten_follows = (
            following is not None
            and not following.prefix
            and following.folded in _TEN_FORMS
            and not token.trailing
        )
        wa_teen = token.folded.startswith("و") and token.folded[1:] in TEEN_UNITS
        if ten_follows and here > first and not joined and wa_teen:
            # "وأحد عشر" folds to "واحد عشر": read it as "and eleven", not "one ten"
            joined, teen_unit = True, TEEN_UNITS[token.folded[1:]]
        word = token.word
        if ten_follows and ((word is not None and word.kind == "unit") or teen_unit):
            # "خمسة عشر", "أحد عشر": a teen in two words
            value = (teen_unit or (word.value if word else 0)) + 10
            if not (joined or here == first or _after_multiplier(tokens, used)):
                break
            if not group.add(Word(value, "teen", False)):
                break
            used += list(range(at, here + 2))
            at = here + 2
            continue
        if word is None or word.kind == "zero":
            break
        if here > first and not joined:
            # Without و a word continues the number only by multiplying what came before.
            if word.kind == "hundred" and group.units and not (group.hundreds or group.tens):
                group.hundreds, group.units = group.units * 100, 0
            elif (
                word.kind in ("multiplier", "plural_multiplier")
                and group.value
                and word.value < ceiling
            ):
                total += group.value * word.value
                ceiling, group = word.value, _Group()
            elif (
                word.kind == "hundreds"
                and _after_multiplier(tokens, used)
                and word.value < ceiling
                and group.add(word)
            ):
                pass  # "ألفين خمسمية": hundreds after a multiplier, said without و
            else:
                break
        elif word.kind in ("multiplier", "plural_multiplier"):
            if group.value or word.value >= ceiling or (word.kind == "plural_multiplier"):
                break
            total += word.value  # a bare "ألف" / "مليون": one of them
            ceiling = word.value
        elif word.kind == "dual_multiplier":
            if group.value or word.value >= ceiling * 2:
                break
            total += word.value
            ceiling = word.value // 2
        elif not group.add(word):
            break
        used += list(range(at, here + 1))
        at = here + 1
    if not used:
        return None
    value = total + group.value
    words = [tokens[i] for i in used if not _lone_wa(tokens[i])]
    weak = len(words) == 1 and words[0].word is not None and words[0].word.weak
    return _Chunk(
        first,
        used[-1] + 1,
        str(value),
        weak,
        any(w.fuzzy for w in words),
        any(not w.fuzzy for w in words),
    )


def _lone_wa(token: _Token) -> bool:
    return (
        token.word is None and token.digits is None and token.folded == "و" and not token.trailing
    )


def _after_multiplier(tokens: Sequence[_Token], used: list[int]) -> bool:
    previous = tokens[used[-1]].word if used else None
    return previous is not None and previous.kind in (
        "multiplier",
        "plural_multiplier",
        "dual_multiplier",
    )


# --- runs of numbers ---------------------------------------------------------------------------


def find_numbers(tokens: Sequence[str]) -> list[NumberSpan]:
    """The spans of ``tokens`` (whitespace-separated words as written) that are spoken numbers."""
    read = [_read(token) for token in tokens]
    spans: list[NumberSpan] = []
    for run in _runs(read):
        spans += _convert_run(tokens, read, run)
    return spans


def _runs(read: Sequence[_Token]) -> Iterator[list[_Chunk]]:
    """Numbers said one after the other, with no other word, prefix or punctuation between."""
    at, run = 0, list[_Chunk]()
    while at < len(read):
        chunk = _cardinal(read, at)
        starts_new = chunk is None or (run and (read[at].prefix or read[at - 1].trailing))
        if starts_new and run:
            yield run
            run = []
        if chunk is None:
            at += 1
            continue
        run.append(chunk)
        at = chunk.end
    if run:
        yield run


def _convert_run(
    tokens: Sequence[str], read: Sequence[_Token], run: list[_Chunk]
) -> list[NumberSpan]:
    currency = (
        run[-1].end < len(read)
        and read[run[-1].end].folded in CURRENCY
        and not read[run[-1].end].prefix
    )
    exact = any(chunk.exact for chunk in run)
    if len(run) >= 3 or (len(run) == 2 and run[0].digits.startswith("0")):
        # A number said digit by digit or in groups: one string of digits.
        if not exact:
            return []
        return [_span(tokens, read, run[0].first, run[-1].end, "".join(c.digits for c in run))]
    spans = []
    for chunk in run:
        if (chunk.weak or (chunk.fuzzy and not chunk.exact)) and not (currency and len(run) == 1):
            continue
        if chunk.first + 1 == chunk.end and read[chunk.first].digits == read[chunk.first].folded:
            continue  # already written in ASCII digits
        spans.append(_span(tokens, read, chunk.first, chunk.end, chunk.digits))
    return spans


def _span(
    tokens: Sequence[str], read: Sequence[_Token], first: int, end: int, digits: str
) -> NumberSpan:
    text = f"{read[first].prefix}{digits}{read[end - 1].trailing}"
    return NumberSpan(first, end, text, SpokenNumber(" ".join(tokens[first:end]), digits))
