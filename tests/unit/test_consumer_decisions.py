"""The consumer's decisions in memory: how a failed batch splits and where a failure goes."""

from __future__ import annotations

import random

import pytest

from config.settings import Settings
from contracts.errors import MalformedMessage
from workers.runtime.decisions import DeadLetter, RetryLater, route_failure, split_batch
from workers.runtime.errors import PermanentError, TransientError
from workers.runtime.failures import FailureReason


class CardExpired(Exception):
    """A service's own permanent error."""


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"delayed_retries": 3, "retry_base_s": 1.0, "retry_max_s": 300.0}
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[arg-type]


def test_a_failure_blamed_on_a_message_isolates_it_between_the_ones_before_and_after() -> None:
    assert split_batch("abcde", 2) == ["ab", "c", "de"]


@pytest.mark.parametrize(
    ("failed", "parts"), [(0, ["a", "bcd"]), (3, ["abc", "d"]), (1, ["a", "b", "cd"])]
)
def test_no_empty_transaction_is_left_at_either_end(failed: int, parts: list[str]) -> None:
    assert split_batch("abcd", failed) == parts


def test_a_failure_no_message_can_be_blamed_for_sends_each_through_alone() -> None:
    assert split_batch(["m1", "m2", "m3"], None) == [["m1"], ["m2"], ["m3"]]


def test_a_failed_index_outside_the_batch_is_a_bug() -> None:
    with pytest.raises(IndexError):
        split_batch("ab", 2)


@pytest.mark.parametrize(
    "error",
    [PermanentError("bug"), MalformedMessage("not JSON"), CardExpired("no")],
    ids=["permanent", "poison", "service-permanent"],
)
def test_poison_goes_to_the_dead_letter_queue_at_once_whatever_the_budget(
    error: Exception,
) -> None:
    assert route_failure(error, 0, settings(), (CardExpired,)) == DeadLetter(FailureReason.POISON)


@pytest.mark.parametrize("error", [TransientError("busy"), KeyError("unknown")])
def test_a_transient_or_unknown_failure_is_retried_later_with_a_growing_delay(
    error: Exception,
) -> None:
    first = route_failure(error, 0, settings(retry_jitter=0), rng=random.Random(1))
    third = route_failure(error, 2, settings(retry_jitter=0), rng=random.Random(1))

    assert first == RetryLater(attempt=1, delay_s=1.0)
    assert third == RetryLater(attempt=3, delay_s=4.0)


def test_the_delay_is_jittered_below_its_ceiling_and_capped() -> None:
    chosen = route_failure(TransientError(), 1, settings(retry_jitter=0.5), rng=random.Random(7))
    capped = route_failure(
        TransientError(), 2, settings(retry_jitter=0, retry_max_s=3.0), rng=random.Random(7)
    )

    assert isinstance(chosen, RetryLater) and 1.0 <= chosen.delay_s <= 2.0
    assert capped == RetryLater(attempt=3, delay_s=3.0)


def test_a_spent_budget_sends_the_message_to_the_dead_letter_queue_as_exhausted() -> None:
    assert route_failure(TransientError(), 3, settings()) == DeadLetter(FailureReason.EXHAUSTED)
    assert route_failure(TransientError(), 0, settings(delayed_retries=0)) == DeadLetter(
        FailureReason.EXHAUSTED
    )
