"""The `warren` command: one entry point for every process and operator task.

`workers/cli.py` is the entry point: it runs a plain `warren worker NAME` without loading this
module (and Typer, and every operator command with it) into the worker process.
"""

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
from workers.runtime.declaration import Service
from workers.runtime.discovery import service, services, worker_names

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
    from benchmarks.cli import app as bench_app

    app.add_typer(bench_app, name="bench")
app.command()(scale)
app.command()(status)


@app.command()
def worker(
    name: Annotated[str, typer.Argument(help="A worker service (`warren services` lists them).")],
    relay: Annotated[bool, typer.Option(help="Also run this service's outbox relay.")] = True,
) -> None:
    """Run one worker service (what a container runs); SIGTERM drains it."""
    from workers.cli import run_worker

    _worker(name)
    run_worker(name, relay)


def _worker(name: str) -> Service:
    if name not in worker_names():
        known = ", ".join(worker_names())
        raise typer.BadParameter(f"unknown worker {name!r}; choose one of {known}")
    return service(name)


@app.command()
def generate(
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a generated file is stale.")
    ] = False,
) -> None:
    """Write the files derived from the service declarations (deployment, broker users, .env)."""
    from workers.ops.generate import ROOT, stale, write

    changed = stale() if check else write()
    for path in changed:
        typer.echo(f"{'stale' if check else 'wrote'} {path.relative_to(ROOT)}")
    if check and changed:
        typer.echo("run `warren generate` and commit the result", err=True)
        raise typer.Exit(1)
    if not changed:
        typer.echo("every generated file is current")


new_app = typer.Typer(no_args_is_help=True, help="Create something new in this repository.")
app.add_typer(new_app, name="new")


@new_app.command("service")
def new_service(
    name: Annotated[str, typer.Argument(help="Lower-case name, e.g. loyalty_points.")],
    description: Annotated[str, typer.Option(help="One line: what the service does.")] = "",
) -> None:
    """Scaffold a working service in its own folders and regenerate the derived files."""
    import subprocess
    import sys

    from workers.ops.generate import ROOT
    from workers.ops.scaffold import write_service

    try:
        written = write_service(name, description)
    except (ValueError, FileExistsError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    for path in written:
        typer.echo(f"created {path.relative_to(ROOT)}")
    if find_spec("ruff") is not None:  # sorted imports and the project's format, when installed
        files = [str(p) for p in written if p.suffix == ".py"]
        subprocess.run(
            [sys.executable, "-m", "ruff", "check", "-q", "--select", "I", "--fix", *files]
        )
        subprocess.run([sys.executable, "-m", "ruff", "format", "-q", *files])
    # A fresh interpreter discovers the new package (this one cached the services it found).
    for command in (["contracts", "export"], ["generate"]):
        subprocess.run([sys.executable, "-m", "workers.cli", *command], cwd=ROOT, check=True)
    typer.echo(f"next: warren topology apply, then warren worker {name} (docs/services.md)")


@app.command("services")
def list_services() -> None:
    """List the declared services: name, queue, what each consumes and sends."""
    for declared in services():
        consumes = ", ".join(declared.subscription.messages)
        sends = ", ".join(m.NAME for m in declared.sends) or "-"
        typer.echo(f"{declared.name} ({declared.kind}, {declared.package}): {declared.description}")
        typer.echo(f"  queue {declared.queue}: {consumes}\n  sends: {sends}")


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
    name: Annotated[str, typer.Argument(help="Whose outbox to relay: a service's name.")],
    database_url: Annotated[
        str | None, typer.Option(help="The database; default: the service's configured one.")
    ] = None,
) -> None:
    """Run only the outbox relay of one service (several may run on PostgreSQL)."""
    from workers.runtime.logs import configure_logging
    from workers.runtime.service import run_relay, serve_metrics

    if database_url is None:
        service(name)  # its database comes from its declaration: a clear error for a typo
    settings = get_settings()
    configure_logging(f"{name}-relay", level=settings.log_level, json_lines=settings.log_json)
    serve_metrics(settings)
    asyncio.run(run_relay(name, settings, database_url=database_url))


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
