"""What a run does and for how long, from the command's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.databases import Backend

QUICK_ROUND_S, DEFAULT_ROUND_S = 5.0, 15.0


@dataclass(frozen=True)
class BenchPlan:
    """Durations, sizes and concurrency of one `warren bench` run."""

    quick: bool
    round_s: float  # one closed-loop round (Warren or baseline)
    pairs: int  # alternating rounds per comparison: A B A B ...
    warmup_s: float  # the start of each round that does not count (the pipeline filling)
    clients: int  # closed loop: concurrent HTTP clients for Warren, chains for the baseline
    open_loop_s: float
    rate: float | None  # open-loop orders/s; None: half the measured saturation throughput
    relay_messages: int
    relay_pairs: int  # relay rounds are short: more pairs for a steady median
    http_round_s: float
    http_connections: int  # per load process
    http_processes: int
    db: Backend
    out_dir: Path
    json_path: Path | None


def make_plan(
    *,
    quick: bool,
    duration: float | None,
    rate: float | None,
    db: Backend,
    out_dir: Path,
    json_path: Path | None,
) -> BenchPlan:
    """`--quick` fits in two minutes, the default in five; `--duration` sets one round."""
    round_s = duration or (QUICK_ROUND_S if quick else DEFAULT_ROUND_S)
    return BenchPlan(
        quick=quick,
        round_s=round_s,
        pairs=2 if quick else 3,
        warmup_s=min(2.0, round_s / 5),
        clients=32,
        open_loop_s=2 * round_s,
        rate=rate,
        relay_messages=5000 if quick else 10000,
        relay_pairs=4 if quick else 5,
        http_round_s=min(10.0, max(3.0, round_s / 3)),
        http_connections=16,
        http_processes=2,
        db=db,
        out_dir=out_dir,
        json_path=json_path,
    )
