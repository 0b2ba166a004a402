"""The one retry policy: capped exponential backoff with "equal jitter".

Four places wait before trying again: the database unit of work (``casebook.db``), the
listener's call writes (``hotline.app.persist``), the AMI reconnect loop (``hotline.ami``) and the
transcription job queue (``casebook.jobs``). They share this helper rather than tenacity
because only two of them retry a function call: the AMI loop waits on a stop event and resets
its count after a connection that lasted, and a job's delay becomes a stored ``available_at``,
not a sleep. All four need the same delay formula; ``retry_call`` adds the loop for the two
that retry a call. A small tested function is less than a dependency adapted four ways.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

_shared_rng = random.Random()


@dataclass(frozen=True)
class Backoff:
    """Delays that double from ``initial`` up to ``cap`` seconds; ``deadline`` (seconds from
    the first attempt) bounds a ``retry_call``, None retrying for as long as it takes."""

    initial: float
    cap: float
    deadline: float | None = None

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """The wait after ``failures`` earlier failures: between half and all of the step, so
        clients that failed together do not come back together."""
        step = min(self.cap, self.initial * 2.0 ** min(failures, 32))
        return step / 2 + (rng or _shared_rng).uniform(0, step / 2)


def retry_call(
    operation: Callable[[], T],
    backoff: Backoff,
    *,
    retryable: Callable[[Exception], bool],
    on_retry: Callable[[Exception, float], None] | None = None,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``operation()``, tried again after a ``backoff`` delay while it raises a ``retryable``
    error. Any other error, or a retryable one whose next wait would pass the deadline, is
    raised as it is (the caller words it)."""
    deadline = None if backoff.deadline is None else clock() + backoff.deadline
    failures = 0
    while True:
        try:
            return operation()
        except Exception as exc:
            if not retryable(exc):
                raise
            delay = backoff.delay(failures)
            if deadline is not None and clock() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(exc, delay)
            sleep(delay)
            failures += 1
