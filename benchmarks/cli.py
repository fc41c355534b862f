"""`warren bench` and `warren bench pipeline`: the commands, their options, what they write.

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


app = typer.Typer(no_args_is_help=False)


@app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
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
    """Measure Warren against raw baselines in one interleaved run; print every ratio.

    `warren bench pipeline` measures the runtime alone instead (see its --help).
    """
    if ctx.invoked_subcommand is not None:
        return
    from benchmarks.main import main
    from benchmarks.plan import make_plan

    plan = make_plan(
        quick=quick, duration=duration, rate=rate, db=db.value, out_dir=out, json_path=json_path
    )
    raise typer.Exit(main(plan))


class PipelineDb(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


@app.command()
def pipeline(
    quick: Annotated[
        bool, typer.Option("--quick", help="Short rounds: done within about a minute.")
    ] = False,
    duration: Annotated[
        float | None,
        typer.Option(min=2, help="Seconds per measured round (default 15, --quick 5)."),
    ] = None,
    in_flight: Annotated[
        int | None, typer.Option(min=1, help="Pipelines kept in flight (default 32).")
    ] = None,
    db: Annotated[
        PipelineDb, typer.Option(help="The steps' databases: fresh ones per run.")
    ] = PipelineDb.SQLITE,
    out: Annotated[Path, typer.Option(help="Where the plot and the logs go.")] = Path("bench-out"),
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures as JSON here.")
    ] = None,
) -> None:
    """The runtime alone: a 4-step pipeline service against its raw aio-pika twin, interleaved."""
    from benchmarks.main import execute
    from benchmarks.pipeline.plan import make_plan
    from benchmarks.pipeline.run import run, write

    plan = make_plan(
        quick=quick,
        duration=duration,
        in_flight=in_flight,
        db=db.value,
        out_dir=out,
        json_path=json_path,
    )
    title = f"warren bench pipeline{' --quick' if quick else ''}"
    raise typer.Exit(
        execute(
            title,
            plan,
            lambda res, timeline, say: run(plan, res, timeline, say),
            lambda result, timeline, console: write(plan, result, timeline, console),
        )
    )
