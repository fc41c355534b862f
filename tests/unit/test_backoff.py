"""The one backoff (outbox/backoff.py): exponential, capped, jittered; every retry loop uses it."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from outbox.backoff import retry_delay

BASE_S = 1.0
CAP_S = 300.0


class ExtremeRandom(random.Random):
    """A random source that always draws the lowest (or the highest) value it is offered."""

    def __init__(self, *, highest: bool) -> None:
        super().__init__(0)
        self._highest = highest

    def uniform(self, a: float, b: float) -> float:
        return b if self._highest else a


def bounds(
    attempt: int, *, base_s: float = BASE_S, cap_s: float = CAP_S, jitter: float = 0.5
) -> tuple[float, float]:
    """The shortest and the longest wait `retry_delay` can choose for `attempt`."""
    low, high = (
        retry_delay(
            attempt, base_s=base_s, cap_s=cap_s, jitter=jitter, rng=ExtremeRandom(highest=h)
        )
        for h in (False, True)
    )
    return low, high


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 9, 10, 20])
def test_each_attempt_waits_between_the_jittered_floor_and_the_capped_exponential(
    attempt: int, jitter: float
) -> None:
    # given the documented ceiling d = min(cap, base * 2**(attempt-1))
    d = min(CAP_S, BASE_S * 2 ** (attempt - 1))

    # when the jitter draws its extremes
    low, high = bounds(attempt, jitter=jitter)

    # then the wait spans exactly [d * (1 - jitter), d]
    assert low == pytest.approx(d * (1 - jitter))
    assert high == pytest.approx(d)


def test_random_waits_stay_within_the_bounds_of_their_attempt() -> None:
    rng = random.Random(7)
    for attempt in range(1, 30):
        d = min(CAP_S, BASE_S * 2 ** (attempt - 1))
        for _ in range(50):
            wait = retry_delay(attempt, base_s=BASE_S, cap_s=CAP_S, jitter=0.5, rng=rng)
            assert d * 0.5 <= wait <= d


@pytest.mark.parametrize("attempt", [10, 50, 1_000, 10_000])
def test_a_message_that_failed_very_often_still_waits_no_longer_than_the_cap(attempt: int) -> None:
    low, high = bounds(attempt, cap_s=CAP_S, jitter=0.5)

    assert high == CAP_S
    assert low == CAP_S / 2


@pytest.mark.parametrize("jitter", [0.0, 0.3, 0.5, 0.9])
def test_the_range_of_waits_never_shrinks_from_one_attempt_to_the_next(jitter: float) -> None:
    ranges = [bounds(attempt, jitter=jitter) for attempt in range(1, 40)]

    for (low, high), (next_low, next_high) in pairwise(ranges):
        assert next_low >= low
        assert next_high >= high


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5])
def test_below_the_cap_with_half_jitter_or_less_a_retry_never_comes_sooner_than_the_previous(
    jitter: float,
) -> None:
    # given attempts whose doubled ceiling is still under the cap
    uncapped = [a for a in range(1, 40) if BASE_S * 2**a <= CAP_S]

    for attempt in uncapped:
        # when the previous attempt waited its longest and this one its shortest
        _, previous_longest = bounds(attempt, jitter=jitter)
        next_shortest, _ = bounds(attempt + 1, jitter=jitter)

        # then this one still waits at least as long
        assert next_shortest >= previous_longest


def test_more_than_half_jitter_can_make_a_retry_come_sooner_than_the_previous() -> None:
    # the documented bound on jitter matters: above 0.5 the ranges of two attempts overlap
    _, previous_longest = bounds(2, jitter=0.75)
    next_shortest, _ = bounds(3, jitter=0.75)

    assert next_shortest < previous_longest


def test_jitter_spreads_messages_that_fail_together() -> None:
    # given 1000 messages failing their third attempt at the same moment
    rng = random.Random(2024)
    waits = [retry_delay(3, base_s=BASE_S, cap_s=CAP_S, jitter=0.5, rng=rng) for _ in range(1000)]

    # then they do not retry in lockstep but across most of [2, 4] seconds
    assert len(set(waits)) > 990
    assert min(waits) < 2.1
    assert max(waits) > 3.9


def test_without_jitter_every_message_waits_exactly_the_exponential() -> None:
    rng = random.Random(1)
    waits = {retry_delay(4, base_s=0.5, cap_s=CAP_S, jitter=0.0, rng=rng) for _ in range(100)}

    assert waits == {4.0}


def test_the_same_seed_gives_the_same_waits() -> None:
    def waits(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [retry_delay(a, base_s=1, cap_s=60, jitter=0.5, rng=rng) for a in range(1, 10)]

    assert waits(5) == waits(5)
    assert waits(5) != waits(6)


@pytest.mark.parametrize("attempt", [0, -1, -100])
def test_attempts_are_counted_from_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="from 1"):
        retry_delay(attempt, base_s=BASE_S, cap_s=CAP_S, jitter=0.5)


def test_the_default_jitter_is_equal_jitter() -> None:
    low, high = (
        retry_delay(5, base_s=1.0, cap_s=CAP_S, rng=ExtremeRandom(highest=h)) for h in (False, True)
    )

    assert (low, high) == (8.0, 16.0)
