"""`warren topology apply | check`."""

from __future__ import annotations

import asyncio

import typer

from config.settings import get_settings
from outbox.amqp import connect_broker
from workers.ops.topology_check import check
from workers.runtime.topology import apply_plan, build_plan

app = typer.Typer(no_args_is_help=True)


@app.command("apply")
def apply_command() -> None:
    """Declare every exchange, queue, binding and delay level (idempotent)."""
    settings = get_settings()
    plan = build_plan(settings)

    async def _apply() -> None:
        connection = await connect_broker(settings, "warren-topology")
        async with connection:
            await apply_plan(connection, plan)

    asyncio.run(_apply())
    typer.echo(
        f"applied {len(plan.exchanges)} exchanges, {len(plan.queues)} queues and "
        f"{len(plan.bindings)} bindings to vhost {settings.vhost!r}"
    )


@app.command("check")
def check_command() -> None:
    """Compare the live broker with the plan; exit 1 and explain each difference."""
    settings = get_settings()
    differences = asyncio.run(check(build_plan(settings), settings))
    if not differences:
        typer.echo(f"topology of vhost {settings.vhost!r} matches the plan")
        return
    for difference in differences:
        typer.echo(str(difference), err=True)
    typer.echo(f"{len(differences)} difference(s) from the plan", err=True)
    raise typer.Exit(1)
