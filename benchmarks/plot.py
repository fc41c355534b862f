"""A PNG of the run: throughput and latency second by second, phases shaded."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stats import percentile
from benchmarks.timeline import Phase, Timeline

COLORS = {"warren": "tab:blue", "baseline": "tab:gray"}
LABELS = {"warren": "Warren orders CONFIRMED/s", "baseline": "raw baseline chains/s"}
SHADES = {"warren": "#dbe9f6", "baseline": "#ececec", "open": "#dff2dc", "other": "#fbf3d5"}
NAN = math.nan


@dataclass
class Points:
    """Per-second throughput and latency of one series; NaN breaks the line between phases."""

    seconds: list[float] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)

    def add(self, second: float, latencies: list[float]) -> None:
        self.seconds.append(second)
        self.rate.append(float(len(latencies)))
        self.p50_ms.append(percentile(latencies, 50) * 1000 if latencies else NAN)
        self.p99_ms.append(percentile(latencies, 99) * 1000 if latencies else NAN)

    def gap(self) -> None:
        self.add(self.seconds[-1] + 0.5 if self.seconds else 0.0, [])
        self.rate[-1] = NAN


def _runs(phase: Phase, series: str) -> bool:
    return phase.name.startswith(series) or (series == "warren" and phase.name.startswith("open"))


def points(timeline: Timeline, series: str) -> Points:
    """Completions per whole second inside the phases where `series` runs."""
    out = Points()
    for phase in timeline.phases:
        if not _runs(phase, series):
            continue
        done = [c for c in timeline.completions if c.series == series]
        for second in range(math.floor(phase.start_s), math.ceil(phase.end_s)):
            out.add(second + 0.5, [c.latency_s for c in done if second <= c.done_s < second + 1])
        out.gap()
    return out


def _shade(name: str) -> str:
    return next(
        (SHADES[k] for k in ("warren", "baseline", "open") if name.startswith(k)), SHADES["other"]
    )


def _phases(axes: tuple[Any, Any], timeline: Timeline, notes: dict[str, str]) -> None:
    top, bottom = axes
    offset = {"xycoords": ("data", "axes fraction"), "textcoords": "offset points"}
    for phase in timeline.phases:
        for axis in axes:
            axis.axvspan(phase.start_s, phase.end_s, color=_shade(phase.name), zorder=0)
        top.annotate(
            phase.name,
            (phase.start_s, 1.0),
            xytext=(2, -2),
            rotation=90,
            va="top",
            fontsize=7,
            **offset,
        )
        if phase.name in notes:
            bottom.annotate(
                notes[phase.name],
                (phase.start_s, 0.5),
                xytext=(14, 0),
                rotation=90,
                va="center",
                fontsize=8,
                **offset,
            )


def save_plot(
    timeline: Timeline,
    path: Path,
    title: str,
    notes: dict[str, str],
    labels: dict[str, str] | None = None,
) -> None:
    """Throughput (top) and latency (bottom) over the run, saved as `path`; `notes` are
    written into the phases they name (those without per-order data); `labels` name the two
    series in the legend (Warren's orders and the raw chains by default)."""
    labels = LABELS | (labels or {})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(13, 7.5))
    for series in ("warren", "baseline"):
        p, color = points(timeline, series), COLORS[series]
        top.plot(p.seconds, p.rate, ".-", ms=3, lw=1, color=color, label=labels[series])
        bottom.plot(p.seconds, p.p50_ms, "-", lw=1, color=color, label=f"{series} p50")
        bottom.plot(p.seconds, p.p99_ms, ":", lw=1, color=color, label=f"{series} p99")
    _phases((top, bottom), timeline, notes)
    top.set_ylabel("completed per second")
    top.legend(loc="upper right", fontsize=8)
    bottom.set_yscale("log")
    bottom.set_ylabel("placement to completion (ms)")
    bottom.set_xlabel("seconds since the start of the run")
    bottom.legend(loc="upper right", fontsize=8, ncol=2)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
