"""What happened when: every completed order or chain, and the phases of the run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Completion:
    """One order (or baseline chain) that reached its end; times in seconds since the start."""

    series: str
    started_s: float
    done_s: float

    @property
    def latency_s(self) -> float:
        return self.done_s - self.started_s


@dataclass(frozen=True, slots=True)
class Phase:
    """A named stretch of the run, for the plot."""

    name: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Window:
    """The part of a round that counts: completions between `start_s` and `end_s`."""

    start_s: float
    end_s: float

    @property
    def seconds(self) -> float:
        return max(self.end_s - self.start_s, 1e-9)


@dataclass
class Timeline:
    """Records completions and phases against one monotonic clock."""

    origin: float = field(default_factory=time.monotonic)
    completions: list[Completion] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.origin

    def record(self, series: str, started: float, done: float) -> None:
        """One completion; `started` and `done` are `time.monotonic()` readings."""
        self.completions.append(Completion(series, started - self.origin, done - self.origin))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Mark what runs inside the block as the phase `name`."""
        start = self.now()
        try:
            yield
        finally:
            self.phases.append(Phase(name, start, self.now()))

    def done_within(self, series: str, window: Window) -> list[Completion]:
        """Completions of `series` that finished inside `window`."""
        return [
            c
            for c in self.completions
            if c.series == series and window.start_s <= c.done_s < window.end_s
        ]

    def started_within(self, series: str, window: Window) -> list[Completion]:
        """Completions of `series` that started inside `window`."""
        return [
            c
            for c in self.completions
            if c.series == series and window.start_s <= c.started_s < window.end_s
        ]

    def settled(self, series: str, round_: Window, clients: int, at_least_s: float) -> Window:
        """The steady part of a closed-loop round: from when `clients` orders have completed
        (each client came round once: the pipeline is full) or `at_least_s` in, whichever is
        later, but never past the middle of the round."""
        done = sorted(c.done_s for c in self.started_within(series, round_))
        full = done[clients - 1] if len(done) >= clients else round_.end_s
        middle = (round_.start_s + round_.end_s) / 2
        return Window(min(max(round_.start_s + at_least_s, full), middle), round_.end_s)

    def rate(self, series: str, window: Window) -> float:
        """Completions per second of `series` inside `window`."""
        return len(self.done_within(series, window)) / window.seconds
