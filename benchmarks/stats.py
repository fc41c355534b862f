"""The arithmetic of a run: percentiles, medians and ratios (pure, no I/O)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
Latency = dict[str, float | None]  # p50, p95, p99 in milliseconds


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolating linearly between ranks; NaN if empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile lies between 0 and 100, not {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_ms(latencies_s: Sequence[float]) -> Latency:
    """p50, p95 and p99 in milliseconds (None when nothing was measured)."""
    if not latencies_s:
        return dict.fromkeys(PERCENTILES)
    return {name: round(percentile(latencies_s, q) * 1000, 1) for name, q in PERCENTILES.items()}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class Comparison:
    """A subject and its baseline measured in alternating rounds (rates per second)."""

    subject: tuple[float, ...]
    baseline: tuple[float, ...]

    @property
    def subject_rate(self) -> float | None:
        """The subject's median rate over its rounds."""
        return median(self.subject)

    @property
    def baseline_rate(self) -> float | None:
        """The baseline's median rate over its rounds."""
        return median(self.baseline)

    @property
    def ratios(self) -> tuple[float, ...]:
        """subject / baseline for each pair of adjacent rounds."""
        pairs = zip(self.subject, self.baseline, strict=False)
        return tuple(s / b for s, b in pairs if b > 0)

    @property
    def ratio(self) -> float | None:
        """The median of the per-pair ratios: each pair shared the machine's mood."""
        return median(self.ratios)

    @property
    def spread(self) -> tuple[float, float] | None:
        """The lowest and highest per-pair ratio."""
        return (min(self.ratios), max(self.ratios)) if self.ratios else None
