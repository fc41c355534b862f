"""`warren up`: the gateway and every worker as child processes on one machine, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from asyncio.subprocess import DEVNULL, PIPE, STDOUT
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from config.settings import DEV_API_KEY, DEV_API_KEY_ENTRY, SERVICES, Settings, get_settings
from workers.ops.autoscale import ScalePolicy
from workers.ops.demo import local_url, run_demo
from workers.ops.scale_cmd import run_scaler

T = TypeVar("T")
WORKERS = tuple(s for s in SERVICES if s != "gateway")
STOP_MARGIN_S = 10.0
TAIL_LINES = 20
STYLES = dict(zip(SERVICES, ("cyan", "magenta", "green", "yellow", "blue"), strict=True))


@dataclass
class Child:
    """One service run as `python -m workers.cli gateway|worker NAME`, its last lines kept."""

    name: str
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def args(self) -> list[str]:
        return ["gateway"] if self.name == "gateway" else ["worker", self.name]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


def plan_children(metrics_port_base: int, json_logs: bool) -> list[Child]:
    """The gateway (on the configured port) and each worker, its metrics on BASE + its number."""
    env = {k: v for k, v in os.environ.items() if k != "WARREN_METRICS_PORT"}
    env |= {"WARREN_LOG_JSON": str(json_logs).lower(), "PYTHONUNBUFFERED": "1"}
    env["_TYPER_STANDARD_TRACEBACK"] = "1"  # plain tracebacks read better between prefixed logs
    workers = [
        Child(name, env | {"WARREN_METRICS_PORT": str(metrics_port_base + i)})
        for i, name in enumerate(WORKERS, start=1)
    ]
    return [Child("gateway", env), *workers]


class Supervisor:
    """Starts the children, echoes their logs, notices deaths and stops them all gracefully."""

    def __init__(self, children: list[Child], console: Console, stop_timeout_s: float) -> None:
        self.children, self.console, self.stop_timeout_s = children, console, stop_timeout_s
        self.stop = asyncio.Event()
        self.exit_code = 0
        self._followers: list[asyncio.Task[None]] = []

    def install_signal_handlers(self) -> None:
        """Ctrl-C, SIGTERM or SIGHUP stop everything; a second one kills what is left."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        if self.stop.is_set():
            self.console.print("[red]killing what is left[/]")
            self._signal_all(signal.SIGKILL)
            return
        self.console.print("[bold]stopping: every service drains (Ctrl-C again to kill)[/]")
        self.stop.set()

    async def start(self) -> None:
        """Start every child in its own process group: signals reach them only through us."""
        for child in self.children:
            child.process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "workers.cli", *child.args),
                env=child.env,
                stdin=DEVNULL,
                stdout=PIPE,
                stderr=STDOUT,
                start_new_session=True,
                limit=2**20,
            )
            self.console.print(f"started {child.name} (pid {child.process.pid})")
            self._followers.append(asyncio.create_task(self._follow(child)))

    async def _follow(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        prefix = (f"{child.name:<9}| ", STYLES[child.name])
        async for raw in child.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            child.tail.append(line)
            if "consuming" in line and child.name != "gateway":
                child.ready.set()
            self.console.print(Text.assemble(prefix, Text.from_ansi(line)), soft_wrap=True)
        code = await child.process.wait()
        if not self.stop.is_set():
            message = f"{child.name} exited unexpectedly ({_describe(code)})"
            self.fail(f"{message}; `warren doctor` checks the services it needs", [child])

    def fail(self, message: str, culprits: list[Child]) -> None:
        """Report a failure with the culprits' last lines, then stop everything with exit 1."""
        self.console.print(f"[bold red]{message}[/]")
        for child in culprits:
            self.console.print(f"[bold]last lines of {child.name}:[/]")
            self.console.print(Text("\n".join(child.tail) or "(no output)"), soft_wrap=True)
        self.exit_code = 1
        self.stop.set()

    async def unless_stopped(self, awaitable: Awaitable[T]) -> T | None:
        """The awaitable's result, or None if the stop came first (it is then cancelled)."""
        task, stopped = asyncio.ensure_future(awaitable), asyncio.create_task(self.stop.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None

    async def ready(self, api_url: str, timeout_s: float) -> bool:
        """Wait until the gateway's /readyz answers 200 and every worker logged "consuming"."""
        gateway, *workers = self.children
        try:
            async with asyncio.timeout(timeout_s):
                await _gateway_ready(api_url)
                gateway.ready.set()  # it consumes too; its readiness is /readyz
                for child in workers:
                    await child.ready.wait()
        except TimeoutError:
            laggards = [c for c in self.children if not c.ready.is_set()]
            names = ", ".join(c.name for c in laggards)
            self.fail(f"not ready after {timeout_s:g}s: {names}", laggards)
            return False
        return True

    async def shutdown(self) -> None:
        """SIGTERM every child (they drain), wait, SIGKILL stragglers, collect the last output."""
        self.stop.set()
        self._signal_all(signal.SIGTERM)
        processes = [c.process for c in self.children if c.process is not None]
        try:
            async with asyncio.timeout(self.stop_timeout_s):
                for process in processes:
                    await process.wait()
        except TimeoutError:
            stragglers = ", ".join(c.name for c in self.children if c.running)
            self.console.print(f"[red]{stragglers} did not stop in time: killed[/]")
            self._signal_all(signal.SIGKILL)
            for process in processes:
                await process.wait()
        await asyncio.gather(*self._followers, return_exceptions=True)

    def _signal_all(self, sig: signal.Signals) -> None:
        for child in self.children:
            if child.running and child.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, sig)


def _describe(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


async def _gateway_ready(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=2.0) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)


SAMPLE_ORDER = (
    '{"customer_id": "cust-1", "items": [{"sku": "MUG-7", "quantity": 2}], '
    '"payment": {"token": "tok_visa"}, "shipping_address": {"name": "Ada Lovelace", '
    '"line1": "1 Loop Rd", "city": "Bristol", "postal_code": "BS1 4DJ", "country": "GB"}}'
)


def print_banner(console: Console, settings: Settings, api_url: str, metrics_base: int) -> None:
    """Where everything is, and how to place a first order by hand."""
    key = DEV_API_KEY if DEV_API_KEY_ENTRY in settings.api_keys else "YOUR-API-KEY"
    grid = Table.grid(padding=(0, 2))
    grid.add_row("API docs", f"{api_url}/docs")
    grid.add_row("RabbitMQ UI", f"{settings.management_url}  (user {settings.management_user})")
    grid.add_row("metrics", f"gateway   {api_url}/metrics")
    for i, name in enumerate(WORKERS, start=1):
        grid.add_row("", f"{name:<9} {local_url(settings.metrics_host, metrics_base + i)}/metrics")
    grid.add_row("data", f"{settings.var_dir}/ (SQLite; stop, then rm -rf it to start afresh)")
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
    children = plan_children(options.metrics_port_base, options.json_logs)
    supervisor = Supervisor(children, console, settings.drain_timeout_s + STOP_MARGIN_S)
    supervisor.install_signal_handlers()
    api_url = local_url(settings.gateway_host, settings.gateway_port)
    scaler: asyncio.Task[None] | None = None
    try:
        await supervisor.start()
        if await supervisor.unless_stopped(supervisor.ready(api_url, options.ready_timeout_s)):
            print_banner(console, settings, api_url, options.metrics_port_base)
            if options.autoscale:
                scaler = asyncio.create_task(
                    run_scaler(list(WORKERS), ScalePolicy(), base=1, stop=supervisor.stop)
                )
            await supervisor.unless_stopped(_after_ready(supervisor, options, api_url))
        await supervisor.stop.wait()
    finally:
        supervisor.stop.set()
        if scaler is not None:
            await scaler
        await supervisor.shutdown()
    console.print("stopped" if supervisor.exit_code == 0 else "[red]stopped after a failure[/]")
    return supervisor.exit_code


async def _after_ready(supervisor: Supervisor, options: UpOptions, api_url: str) -> None:
    if options.demo is None:
        return
    ok = await run_demo(api_url, orders=options.demo, console=supervisor.console)
    if options.exit_after_demo:
        supervisor.exit_code = 0 if ok else 1
        supervisor.stop.set()
    else:
        supervisor.console.print("[bold]still running: Ctrl-C stops everything[/]")


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
    if exit_after_demo and demo is None:
        raise typer.BadParameter("--exit-after-demo needs --demo N")
    options = UpOptions(
        metrics_port_base, json_logs, demo, exit_after_demo, ready_timeout, autoscale
    )
    code = asyncio.run(run_up(options, get_settings(), Console(highlight=False)))
    raise typer.Exit(code)
