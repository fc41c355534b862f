"""A circuit breaker: after repeated failures, stop calling for a while, then let one call try.

One breaker for every synchronous call Warren makes: payments to the card provider (one per
process) and the gateway to each instance of an HTTP service (one per instance).
"""

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

    def allow(self) -> bool:
        """Whether a call may go through now; while half-open, the first caller takes the trial."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._trial:
            return False
        self._trial = True
        return True

    def before_call(self) -> None:
        """Raise `CircuitOpen` unless a call may go through now."""
        if not self.allow():
            raise CircuitOpen(f"circuit open after {self._failed} failures in a row")

    def retry_after(self) -> float:
        """Seconds until a trial call may go (0 when closed or already half-open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.reset_s - (self._clock() - self._opened_at))

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
