"""`warren up`: the gateway and every worker as child processes on one machine, until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from config.settings import DEV_API_KEY, DEV_API_KEY_ENTRY, Settings, get_settings
from workers.ops.autoscale import ScalePolicy
from workers.ops.demo import local_url, run_demo
from workers.ops.readiness import http_probe, worker_probe
from workers.ops.scale_cmd import run_scaler, scalable
from workers.ops.supervisor import Child
from workers.ops.up_session import UpSession, echo
from workers.provider.settings import ProviderSettings
from workers.runtime.discovery import worker_names, workers

if TYPE_CHECKING:  # rich is imported by `warren up`, not by `warren worker` (this module loads)
    from rich.console import Console

STOP_MARGIN_S = 10.0
PROVIDER_URL_VARIABLE = "WARREN_PAYMENT_PROVIDER_URL"


def provider_child(settings: Settings, env: dict[str, str], console: Console) -> Child | None:
    """The card provider service payments will call, unless `env` already names a provider.

    Sets `WARREN_PAYMENT_PROVIDER_URL` in `env` for the children started after it.
    """
    if env.get(PROVIDER_URL_VARIABLE):
        return None
    env.setdefault("WARREN_PROVIDER_DB_URL", f"sqlite+inline:///{settings.var_dir / 'provider.db'}")
    provider = ProviderSettings()  # its port and host from this process's environment
    url = local_url(provider.host, provider.port)
    env[PROVIDER_URL_VARIABLE] = url
    return Child(
        "provider",
        "workers.provider",
        [],
        dict(env),
        http_probe(f"{url}/healthz"),
        on_line=echo(console, "provider"),
    )


def plan_children(
    settings: Settings, metrics_port_base: int, json_logs: bool, console: Console
) -> list[Child]:
    """The provider, the gateway (on its port) and each worker, its metrics on BASE + its number."""
    env = {k: v for k, v in os.environ.items() if k != "WARREN_METRICS_PORT"}
    env |= {"WARREN_LOG_JSON": str(json_logs).lower(), "PYTHONUNBUFFERED": "1"}
    env["_TYPER_STANDARD_TRACEBACK"] = "1"  # plain tracebacks read better between prefixed logs
    provider = provider_child(settings, env, console)
    readyz = local_url(settings.gateway_host, settings.gateway_port) + "/readyz"
    api_ports = api_ports_of(settings, metrics_port_base)
    workers = [
        Child(
            name,
            "workers.cli",
            ["worker", name],
            env
            | {"WARREN_METRICS_PORT": str(metrics_port_base + i)}
            | ({"WARREN_HTTP_PORT": str(api_ports[name])} if name in api_ports else {}),
            probe=worker_probe(settings, name),
            on_line=echo(console, name),
        )
        for i, name in enumerate(worker_names(), start=1)
    ]
    api_urls = {
        f"WARREN_{name.upper()}_API_URLS": local_url(settings.http_host, port)
        for name, port in api_ports.items()
    }
    gateway = Child(
        "gateway",
        "workers.cli",
        ["gateway"],
        env | api_urls,
        http_probe(readyz),
        on_line=echo(console, "gateway"),
    )
    return [*([provider] if provider else []), gateway, *workers]


def api_ports_of(settings: Settings, metrics_port_base: int) -> dict[str, int]:
    """The port of each service with an HTTP API: after the workers' metrics ports."""
    first = metrics_port_base + len(worker_names()) + 1
    return {s.name: first + i for i, s in enumerate(s for s in workers() if s.http)}


SAMPLE_ORDER = (
    '{"customer_id": "cust-1", "items": [{"sku": "MUG-7", "quantity": 2}], '
    '"payment": {"token": "tok_visa"}, "shipping_address": {"name": "Ada Lovelace", '
    '"line1": "1 Loop Rd", "city": "Bristol", "postal_code": "BS1 4DJ", "country": "GB"}}'
)


def print_banner(
    console: Console,
    settings: Settings,
    api_url: str,
    metrics_base: int,
    provider_url: str | None = None,
) -> None:
    """Where everything is, and how to place a first order by hand."""
    from rich.table import Table
    from rich.text import Text

    key = DEV_API_KEY if DEV_API_KEY_ENTRY in settings.api_keys else "YOUR-API-KEY"
    grid = Table.grid(padding=(0, 2))
    grid.add_row("API docs", f"{api_url}/docs")
    grid.add_row("RabbitMQ UI", f"{settings.management_url}  (user {settings.management_user})")
    grid.add_row("metrics", f"gateway   {api_url}/metrics")
    for i, name in enumerate(worker_names(), start=1):
        grid.add_row("", f"{name:<9} {local_url(settings.metrics_host, metrics_base + i)}/metrics")
    grid.add_row("data", f"{settings.var_dir}/ (SQLite; stop, then rm -rf it to start afresh)")
    if provider_url is not None:
        grid.add_row("card provider", f"{provider_url}/charges  (its ledger; `warren verify`")
        grid.add_row("", f"reconciles with it given {PROVIDER_URL_VARIABLE}={provider_url})")
    console.rule("[bold green]Warren is up")
    console.print(grid)
    console.print("Place an order, then follow it (GET its Location, e.g. ?wait=10):")
    console.print(
        Text(
            f"curl -i -X POST {api_url}/orders -H 'Authorization: Bearer {key}' "
            f"-H 'Idempotency-Key: first-order' -H 'Content-Type: application/json' "
            f"-d '{SAMPLE_ORDER}'"
        ),
        soft_wrap=True,
    )
    console.print("Ctrl-C stops everything.")
    console.rule()


@dataclass(frozen=True)
class UpOptions:
    """What `warren up` was asked to do."""

    metrics_port_base: int = 9100
    json_logs: bool = False
    demo: int | None = None
    exit_after_demo: bool = False
    ready_timeout_s: float = 60.0
    autoscale: bool = False


async def run_up(options: UpOptions, settings: Settings, console: Console) -> int:
    """Run everything until a signal, a death or (with --exit-after-demo) the demo's end."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    children = plan_children(settings, options.metrics_port_base, options.json_logs, console)
    session = UpSession(children, console, settings.drain_timeout_s + STOP_MARGIN_S)
    provider_url = children[-1].env.get(PROVIDER_URL_VARIABLE)  # as the workers were told
    session.install_signal_handlers()
    api_url = local_url(settings.gateway_host, settings.gateway_port)
    scaler: asyncio.Task[None] | None = None
    try:
        session.start()
        if await session.unless_stopped(session.ready(options.ready_timeout_s)):
            print_banner(console, settings, api_url, options.metrics_port_base, provider_url)
            if options.autoscale:
                scaler = asyncio.create_task(
                    run_scaler(scalable(), ScalePolicy(), base=1, stop=session.stop)
                )
            await session.unless_stopped(_after_ready(session, options, api_url))
        await session.stop.wait()
    finally:
        session.stop.set()
        if scaler is not None:
            await scaler
        await session.shutdown()
    console.print("stopped" if session.exit_code == 0 else "[red]stopped after a failure[/]")
    return session.exit_code


async def _after_ready(session: UpSession, options: UpOptions, api_url: str) -> None:
    if options.demo is None:
        return
    ok = await run_demo(api_url, orders=options.demo, console=session.console)
    if options.exit_after_demo:
        session.exit_code = 0 if ok else 1
        session.stop.set()
    else:
        session.console.print("[bold]still running: Ctrl-C stops everything[/]")


def up(
    metrics_port_base: Annotated[
        int, typer.Option(min=1, max=65000, help="Worker N serves /metrics on BASE+N.")
    ] = 9100,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Children log JSON.")] = False,
    demo: Annotated[
        int | None, typer.Option(min=3, help="Once ready, place N demo orders and show them.")
    ] = None,
    exit_after_demo: Annotated[
        bool, typer.Option("--exit-after-demo", help="Stop after the demo; exit 1 on a mismatch.")
    ] = False,
    ready_timeout: Annotated[float, typer.Option(min=1, help="Seconds to become ready.")] = 60.0,
    autoscale: Annotated[
        bool, typer.Option("--autoscale", help="Add workers (up to 4 each) as queues grow.")
    ] = False,
) -> None:
    """Run the gateway and every worker (with relays) on this machine; Ctrl-C stops them."""
    from rich.console import Console

    if exit_after_demo and demo is None:
        raise typer.BadParameter("--exit-after-demo needs --demo N")
    options = UpOptions(
        metrics_port_base, json_logs, demo, exit_after_demo, ready_timeout, autoscale
    )
    code = asyncio.run(run_up(options, get_settings(), Console(highlight=False)))
    raise typer.Exit(code)
