"""The `warren` command: one entry point for every process and operator task."""

from __future__ import annotations

import asyncio
from importlib.util import find_spec
from typing import Annotated

import typer

from config.settings import get_settings
from workers.ops.contracts_cmd import app as contracts_app
from workers.ops.demo import demo
from workers.ops.dlq_cmd import app as dlq_app
from workers.ops.doctor import doctor
from workers.ops.scale_cmd import scale
from workers.ops.status import status
from workers.ops.topology_cmd import app as topology_app
from workers.ops.up import up

app = typer.Typer(
    name="warren",
    help="Warren: asynchronous order processing on RabbitMQ.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(contracts_app, name="contracts", help="Export and check the message contracts.")
app.add_typer(topology_app, name="topology", help="Declare and check the broker topology.")
app.add_typer(dlq_app, name="dlq", help="Inspect, replay, purge and export dead letters.")
app.command(help="Check that RabbitMQ, its management API and PostgreSQL answer.")(doctor)
app.command()(up)
app.command()(demo)
if find_spec("benchmarks") is not None:  # a checkout has benchmarks/; the installed wheel not
    from benchmarks.cli import bench

    app.command()(bench)
app.command()(scale)
app.command()(status)


WORKERS = ("orders", "inventory", "payments", "shipping")


@app.command()
def worker(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(WORKERS)}.")],
    relay: Annotated[bool, typer.Option(help="Also run this service's outbox relay.")] = True,
) -> None:
    """Run one worker service (what a container runs); SIGTERM drains it."""
    if name not in WORKERS:
        raise typer.BadParameter(f"unknown worker {name!r}; choose one of {', '.join(WORKERS)}")
    from importlib import import_module

    from workers.runtime.service import main

    settings = get_settings()
    bootstrap = import_module(f"workers.{name}.bootstrap").bootstrap
    main(bootstrap(settings), settings, with_relay=relay)


@app.command()
def gateway(
    host: Annotated[str | None, typer.Option(help="Default: WARREN_GATEWAY_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: WARREN_GATEWAY_PORT.")] = None,
) -> None:
    """Run the HTTP gateway (API docs at /docs); SIGTERM drains it."""
    from gateway.app import create_app
    from gateway.server import serve
    from workers.runtime.logs import configure_logging

    settings = get_settings()
    configure_logging("gateway", level=settings.log_level, json_lines=settings.log_json)
    serve(create_app(settings), host or settings.gateway_host, port or settings.gateway_port)


@app.command()
def relay(
    service: Annotated[str, typer.Argument(help="Whose outbox to relay, e.g. orders.")],
    database_url: Annotated[
        str | None, typer.Option(help="The database; default: the service's configured one.")
    ] = None,
) -> None:
    """Run only the outbox relay of one service (several may run on PostgreSQL)."""
    from workers.runtime.logs import configure_logging
    from workers.runtime.service import run_relay, serve_metrics

    settings = get_settings()
    configure_logging(f"{service}-relay", level=settings.log_level, json_lines=settings.log_json)
    serve_metrics(settings)
    asyncio.run(run_relay(service, settings, database_url=database_url))


@app.command()
def verify(
    stuck_after: Annotated[
        float | None, typer.Option(help="Seconds in flight before an order counts as stuck.")
    ] = None,
) -> None:
    """Check every order against stock, payments and shipments; exit 1 on any finding."""
    from datetime import timedelta

    from workers.ops.verify import verify as run_verify

    settings = get_settings()
    after = timedelta(seconds=stuck_after) if stuck_after is not None else None
    findings = asyncio.run(run_verify(settings, stuck_after=after))
    for finding in findings:
        typer.echo(str(finding), err=True)
    if findings:
        typer.echo(f"{len(findings)} finding(s)", err=True)
        raise typer.Exit(1)
    typer.echo("verified: every order agrees with stock, payments and shipments")


if __name__ == "__main__":
    app()
