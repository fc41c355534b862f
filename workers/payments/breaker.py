"""A circuit breaker: after repeated failures, stop calling for a while, then let one call try."""

from __future__ import annotations

import time
from collections.abc import Callable

from workers.runtime.errors import InfrastructureError


class CircuitOpen(InfrastructureError):
    """The breaker is open: the dependency failed repeatedly, so the call was not made."""


class CircuitBreaker:
    """Closed -> open after `failures` failures in a row -> one trial call after `reset_s`.

    While half-open exactly one call is let through; concurrent calls are refused until it ends,
    so a still-broken dependency sees one request per `reset_s`, not a burst.
    """

    def __init__(
        self,
        *,
        failures: int = 5,
        reset_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._failed = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        """`closed`, `open` or `half-open`."""
        if self._opened_at is None:
            return "closed"
        waited = self._clock() - self._opened_at
        return "half-open" if waited >= self.reset_s else "open"

    def before_call(self) -> None:
        """Raise `CircuitOpen` unless a call may go through now."""
        state = self.state
        if state == "closed":
            return
        if state == "open" or self._trial:
            raise CircuitOpen(f"circuit open after {self._failed} failures in a row")
        self._trial = True

    def succeeded(self) -> None:
        """The call got an answer: close."""
        self._failed, self._opened_at, self._trial = 0, None, False

    def released(self) -> None:
        """The call ended without a verdict (cancelled): another trial may go."""
        self._trial = False

    def failed(self) -> None:
        """The call got no usable answer: count it, and (re)open at the threshold."""
        self._failed += 1
        self._trial = False
        if self._failed >= self.failures:
            self._opened_at = self._clock()
