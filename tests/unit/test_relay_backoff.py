"""A failed outbox publish is retried forever, with capped, jittered backoff (outbox/relay.py)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from outbox import relay
from outbox.relay import publish_backoff


class ExtremeRandom:
    """Stands in for the `random` module in the relay: always the lowest or highest draw."""

    def __init__(self, *, highest: bool) -> None:
        self._highest = highest

    def uniform(self, a: float, b: float) -> float:
        return b if self._highest else a


def backoff_range(
    monkeypatch: pytest.MonkeyPatch, attempts: int, *, cap: float = 60.0
) -> tuple[float, float]:
    """The shortest and longest pause before retry `attempts` of a failed publish."""
    monkeypatch.setattr(relay, "random", ExtremeRandom(highest=False))
    low = publish_backoff(attempts, cap=cap)
    monkeypatch.setattr(relay, "random", ExtremeRandom(highest=True))
    high = publish_backoff(attempts, cap=cap)
    return low, high


@pytest.mark.parametrize("cap", [10.0, 60.0])
def test_a_publish_that_keeps_failing_never_waits_longer_than_the_cap(
    monkeypatch: pytest.MonkeyPatch, cap: float
) -> None:
    for attempts in (1, 5, 10, 16, 17, 100, 10_000):
        low, high = backoff_range(monkeypatch, attempts, cap=cap)

        assert 0 < low <= high <= cap


def test_after_many_failures_the_pause_settles_between_half_the_cap_and_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert backoff_range(monkeypatch, 1_000, cap=60.0) == (30.0, 60.0)


def test_the_pause_grows_with_the_number_of_failed_attempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ranges = [backoff_range(monkeypatch, attempts) for attempts in range(1, 20)]

    for (low, high), (next_low, next_high) in pairwise(ranges):
        assert next_low >= low
        assert next_high >= high
    # and it really grows: the first retry comes within a second, later ones much later
    assert ranges[0][1] <= 1.0
    assert ranges[6][0] > 10 * ranges[0][1]


def test_real_pauses_are_jittered_within_their_range(monkeypatch: pytest.MonkeyPatch) -> None:
    low, high = backoff_range(monkeypatch, 4)
    monkeypatch.undo()

    pauses = [publish_backoff(4) for _ in range(500)]

    assert all(low <= pause <= high for pause in pauses)
    assert len(set(pauses)) > 450
