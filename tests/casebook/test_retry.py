"""The one retry policy (casebook.retry) that the database, the listener's writes, the AMI
reconnects and the transcription queue share."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from casebook.retry import Backoff, retry_call


class Flaky(Exception):
    pass


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(times: int, error: Exception) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def operation() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "done"

    return calls, operation


def test_delays_double_to_the_cap_with_equal_jitter() -> None:
    backoff = Backoff(initial=0.5, cap=30.0)
    rng = random.Random(3)
    for failures, step in [(0, 0.5), (1, 1.0), (3, 4.0), (6, 30.0), (1000, 30.0)]:
        delays = {backoff.delay(failures, rng) for _ in range(50)}
        assert all(step / 2 <= delay <= step for delay in delays)
        assert len(delays) > 1


def test_a_retryable_error_is_retried_until_the_call_succeeds() -> None:
    fake = FakeTime()
    calls, operation = failing(4, Flaky("busy"))
    seen: list[float] = []
    result = retry_call(
        operation,
        Backoff(initial=1.0, cap=2.0),
        retryable=lambda exc: isinstance(exc, Flaky),
        on_retry=lambda exc, delay: seen.append(delay),
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert result == "done" and len(calls) == 5
    assert seen == fake.sleeps
    assert all(0.5 <= d <= 1.0 for d in fake.sleeps[:1]) and all(d <= 2.0 for d in fake.sleeps)


def test_without_a_deadline_it_retries_for_ever_at_the_capped_delay() -> None:
    fake = FakeTime()
    calls, operation = failing(200, Flaky("down"))
    retry_call(
        operation,
        Backoff(initial=0.5, cap=30.0),
        retryable=lambda exc: True,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert len(calls) == 201
    assert max(fake.sleeps) <= 30.0 and min(fake.sleeps[10:]) >= 15.0


def test_past_the_deadline_the_last_error_is_raised() -> None:
    fake = FakeTime()
    calls, operation = failing(1000, Flaky("locked"))
    with pytest.raises(Flaky, match="locked"):
        retry_call(
            operation,
            Backoff(initial=1.0, cap=4.0, deadline=10.0),
            retryable=lambda exc: True,
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert fake.now <= 10.0 and len(calls) > 2


def test_an_error_that_is_not_retryable_is_raised_at_once() -> None:
    fake = FakeTime()
    calls, operation = failing(1, ValueError("bad input"))
    with pytest.raises(ValueError):
        retry_call(
            operation,
            Backoff(initial=1.0, cap=4.0),
            retryable=lambda exc: isinstance(exc, Flaky),
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert len(calls) == 1 and fake.sleeps == []
