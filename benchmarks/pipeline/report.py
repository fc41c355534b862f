"""The outcome of a `warren bench pipeline` run: its record, JSON and printed lines (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.pipeline.contracts import CONTRACTS
from benchmarks.stats import Comparison

RATIO_GOAL = 0.7  # runtime pipelines/s over raw pipelines/s, at least (issue 16)
MESSAGES_PER_PIPELINE = len(CONTRACTS)  # four steps and the finishing message


@dataclass(frozen=True)
class PipelineResult:
    """Every figure of a run; rates are medians over rounds, the ratio the median over pairs."""

    pipelines: Comparison  # runtime pipelines/s vs raw pipelines/s
    cpu_ms: dict[str, dict[str, float]]  # "runtime" / "raw": CPU ms per pipeline, by process
    failures: dict[str, int]
    rss_mb: dict[str, float]
    machine: dict[str, str] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    def worker_cpu_ms(self, side: str) -> float:
        """CPU ms per pipeline of one side's step processes together (the driver left out)."""
        return round(sum(ms for name, ms in self.cpu_ms[side].items() if name != "bench"), 2)

    def goal_met(self) -> bool | None:
        """The issue's bar; None when the ratio is missing."""
        ratio = self.pipelines.ratio
        return None if ratio is None else ratio >= RATIO_GOAL


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def to_json(result: PipelineResult) -> dict[str, Any]:
    """The `--json` document."""
    c = result.pipelines
    return {
        "pipelines_per_s": _r(c.subject_rate, 2),
        "raw_pipelines_per_s": _r(c.baseline_rate, 2),
        "ratio_to_raw": _r(c.ratio),
        "pair_ratios": [round(x, 3) for x in c.ratios],
        "rounds": {
            "runtime": [round(x, 1) for x in c.subject],
            "raw": [round(x, 1) for x in c.baseline],
        },
        "messages_per_pipeline": MESSAGES_PER_PIPELINE,
        "worker_cpu_ms_per_pipeline": {
            side: result.worker_cpu_ms(side) for side in ("runtime", "raw")
        },
        "cpu_ms_per_pipeline": result.cpu_ms,
        "rss_mb": result.rss_mb,
        "failures": result.failures,
        "goals": {f"ratio_at_least_{RATIO_GOAL}": result.goal_met()},
        "machine": result.machine,
        "run": result.run,
    }


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "unknown"}[met]


def format_report(result: PipelineResult) -> list[str]:
    """The lines `warren bench pipeline` prints at the end."""
    c = result.pipelines
    ratio = "-" if c.ratio is None else f"{c.ratio:.2f}"
    pairs = ", ".join(f"{x:.2f}" for x in c.ratios)
    lines = [
        f"runtime pipeline   {c.subject_rate or 0:.1f} pipelines/s "
        f"({MESSAGES_PER_PIPELINE} messages each)",
        f"raw aio-pika twin  {c.baseline_rate or 0:.1f} pipelines/s",
        f"  ratio            {ratio}  (pairs {pairs}; goal >= {RATIO_GOAL}: "
        f"{_verdict(result.goal_met())})",
    ]
    for side in ("runtime", "raw"):
        spent = result.cpu_ms.get(side, {})
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in spent.items())
        lines.append(
            f"CPU ms per pipeline, {side}: {parts} (steps {result.worker_cpu_ms(side):.2f})"
        )
    if any(result.failures.values()):
        lines.append("failures: " + ", ".join(f"{k} {v}" for k, v in result.failures.items() if v))
    lines.append("peak RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in result.rss_mb.items()))
    return lines
