"""Character and word error rates, on normalised Arabic, for tests and the benchmark.

Rates over a set are pooled (total edits / total reference length), the usual way: a set's CER is
not the mean of its clips' CERs, which would let short clips weigh as much as long ones.
"""

from __future__ import annotations

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
