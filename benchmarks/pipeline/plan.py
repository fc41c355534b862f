"""What a `warren bench pipeline` run does and for how long, from the command's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.databases import Backend

QUICK_ROUND_S, DEFAULT_ROUND_S = 5.0, 15.0
IN_FLIGHT = 32  # pipelines in flight: as many as the full bench's clients, one prefetch's worth


@dataclass(frozen=True)
class PipelinePlan:
    """Durations and concurrency of one run: interleaved closed-loop rounds, runtime and raw."""

    quick: bool
    round_s: float
    pairs: int
    warmup_s: float  # the start of each round that does not count (the pipeline filling)
    clients: int  # pipelines kept in flight
    db: Backend
    out_dir: Path
    json_path: Path | None


def make_plan(
    *,
    quick: bool,
    duration: float | None,
    in_flight: int | None,
    db: Backend,
    out_dir: Path,
    json_path: Path | None,
) -> PipelinePlan:
    """`--quick` is 3 pairs of 5 s rounds (about a minute), the default 3 pairs of 15 s."""
    round_s = duration or (QUICK_ROUND_S if quick else DEFAULT_ROUND_S)
    return PipelinePlan(
        quick=quick,
        round_s=round_s,
        pairs=3,
        warmup_s=min(2.0, round_s / 5),
        clients=in_flight or IN_FLIGHT,
        db=db,
        out_dir=out_dir,
        json_path=json_path,
    )
