"""The circuit breaker (payments, the gateway's calls).

It opens after failures in a row, lets one trial through, and closes on a success.
"""

from __future__ import annotations

import pytest

from workers.runtime.breaker import CircuitBreaker, CircuitOpen
from workers.runtime.errors import InfrastructureError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def failed_times(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.failed()


def test_it_stays_closed_below_the_threshold_and_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(failures=3, reset_s=5, clock=Clock())
    failed_times(breaker, 2)
    breaker.before_call()
    breaker.succeeded()
    failed_times(breaker, 2)
    assert breaker.state == "closed"
    breaker.before_call()  # still lets calls through


def test_it_opens_at_the_threshold_and_refuses_calls_as_an_infrastructure_failure() -> None:
    breaker = CircuitBreaker(failures=3, reset_s=5, clock=Clock())
    failed_times(breaker, 3)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert isinstance(refused.value, InfrastructureError)


def test_after_the_reset_time_exactly_one_concurrent_call_may_try() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_s=5, clock=clock)
    failed_times(breaker, 1)
    clock.now = 5.0
    assert breaker.state == "half-open"
    breaker.before_call()  # the trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a concurrent call while the trial runs


def test_a_failed_trial_opens_it_again_for_a_full_reset_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_s=5, clock=clock)
    failed_times(breaker, 1)
    clock.now = 5.0
    failed_times(breaker, 1)
    clock.now = 9.9
    assert breaker.state == "open"
    clock.now = 10.0
    breaker.before_call()


def test_a_successful_trial_closes_it_for_everyone() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_s=5, clock=clock)
    failed_times(breaker, 1)
    clock.now = 5.0
    breaker.before_call()
    breaker.succeeded()
    assert breaker.state == "closed"
    breaker.before_call()
    breaker.before_call()


def test_a_trial_that_ends_without_a_verdict_lets_the_next_call_try() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_s=5, clock=clock)
    failed_times(breaker, 1)
    clock.now = 5.0
    breaker.before_call()
    breaker.released()  # e.g. the handler was cancelled mid-call
    breaker.before_call()


def test_retry_after_counts_down_to_the_trial_and_is_zero_when_closed() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, reset_s=5, clock=clock)
    assert breaker.retry_after() == 0
    failed_times(breaker, 2)
    clock.now = 1
    assert breaker.retry_after() == 4 and not breaker.allow()
    clock.now = 6
    assert breaker.retry_after() == 0
    assert breaker.allow(), "the first caller takes the trial"
    assert not breaker.allow(), "and only one"
    breaker.failed()  # the trial failed: open again at once
    assert breaker.state == "open" and breaker.retry_after() == 5
