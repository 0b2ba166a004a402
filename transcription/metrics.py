"""Character and word error rates, on normalised Arabic, for tests and the benchmark.

Rates over a set are pooled (total edits / total reference length), the usual way: a set's CER is
not the mean of its clips' CERs, which would let short clips weigh as much as long ones.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from casebook.arabic import normalise


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_item in enumerate(reference, start=1):
        current = [i]
        for j, hyp_item in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[j] + 1,
                    current[j - 1] + 1,
                    previous[j - 1] + (ref_item != hyp_item),
                )
            )
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class ErrorCount:
    edits: int
    length: int  # of the reference

    @property
    def rate(self) -> float:
        if self.length == 0:
            return 0.0 if self.edits == 0 else 1.0
        return self.edits / self.length

    def __add__(self, other: ErrorCount) -> ErrorCount:
        return ErrorCount(self.edits + other.edits, self.length + other.length)


def char_errors(reference: str, hypothesis: str) -> ErrorCount:
    ref, hyp = normalise(reference), normalise(hypothesis)
    return ErrorCount(edit_distance(ref, hyp), len(ref))


def word_errors(reference: str, hypothesis: str) -> ErrorCount:
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    return ErrorCount(edit_distance(ref, hyp), len(ref))


def cer(pairs: Iterable[tuple[str, str]]) -> float:
    """Pooled character error rate over (reference, hypothesis) pairs."""
    return sum((char_errors(ref, hyp) for ref, hyp in pairs), ErrorCount(0, 0)).rate


def wer(pairs: Iterable[tuple[str, str]]) -> float:
    """Pooled word error rate over (reference, hypothesis) pairs."""
    return sum((word_errors(ref, hyp) for ref, hyp in pairs), ErrorCount(0, 0)).rate


_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class NumberCount:
    """How a draft carries the numbers said: each said number counts once as right when the
    draft holds that exact digit string; ``extra`` are the draft's digit strings nobody said
    (a wrong number and an invented one both land here)."""

    right: int
    said: int
    extra: int

    @property
    def accuracy(self) -> float:
        return self.right / self.said if self.said else 0.0

    def __add__(self, other: NumberCount) -> NumberCount:
        return NumberCount(
            self.right + other.right, self.said + other.said, self.extra + other.extra
        )


def number_count(said: Sequence[str], hypothesis: str) -> NumberCount:
    """Compare the digit strings said with those in ``hypothesis`` (after ``normalise``, so
    Arabic-Indic digits count as their ASCII ones), as multisets: order does not matter, a
    number said twice must be written twice."""
    written = Counter(_DIGITS.findall(normalise(hypothesis)))
    right = sum((Counter(said) & written).values())
    return NumberCount(right, len(said), sum(written.values()) - right)
