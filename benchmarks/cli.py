"""`warren bench`: the command, its options, and what it prints and writes.

Only `typer` is imported here; the benchmark itself (aio-pika, httpx, matplotlib) is imported
when the command runs, so `warren --help` stays quick.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Db(StrEnum):
    SQLITE = "sqlite"
    SQLITE_AIOSQLITE = "sqlite-aiosqlite"
    POSTGRES = "postgres"


def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="Short rounds: done within two minutes.")
    ] = False,
    duration: Annotated[
        float | None,
        typer.Option(min=2, help="Seconds per measured round (default 15, --quick 5)."),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=0.1, help="Open-loop orders/s (default: half the saturation rate)."),
    ] = None,
    db: Annotated[
        Db, typer.Option(help="The services' databases: fresh ones per run.")
    ] = Db.SQLITE,
    out: Annotated[Path, typer.Option(help="Where the plot and the logs go.")] = Path("bench-out"),
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures as JSON here.")
    ] = None,
) -> None:
    """Measure Warren against raw baselines in one interleaved run; print every ratio."""
    from benchmarks.main import main
    from benchmarks.plan import make_plan

    plan = make_plan(
        quick=quick, duration=duration, rate=rate, db=db.value, out_dir=out, json_path=json_path
    )
    raise typer.Exit(main(plan))
