"""`warren status`: services, their processes, queue depths and rates, and their outboxes, live."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from config.settings import Settings, get_settings
from contracts.topology import dead_letter_queue, paused_queue
from workers.ops.management import Management
from workers.ops.outbox_status import outbox_snapshot, render_outboxes
from workers.runtime.discovery import subscriptions

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    service: str
    queue: str
    processes: int
    consumers: int
    paused: int
    ready: int
    unacked: int
    dead_letters: int
    in_rate: float
    out_rate: float

    @property
    def state(self) -> str:
        """`paused`: a process of it holds its deliveries through an outage (see operations)."""
        if not self.processes:
            return "stopped"
        if self.paused:
            return "paused"
        return "running" if self.consumers else "starting"


def _rate(queue: dict[str, Any], stat: str) -> float:
    return float(
        ((queue.get("message_stats") or {}).get(f"{stat}_details") or {}).get("rate") or 0.0
    )


async def snapshot(settings: Settings) -> list[ServiceStatus]:
    """One reading of every service from the management API."""
    async with Management(settings) as api:
        queues = {q["name"]: q for q in await api.queues()}
        names = [
            ((c.get("client_properties") or {}).get("connection_name") or "")
            for c in await api.connections()
        ]
        # the consumer list follows each consume and cancel; a queue's own count lags behind
        consuming = Counter((c.get("queue") or {}).get("name") for c in await api.consumers())
    # a paused process shows itself by a queue of its own while the pause lasts (runtime/edge.py)
    paused = Counter(paused_queue(name) for name in queues)
    processes = Counter(
        name.split("@", 1)[0].removesuffix("-worker").removesuffix("-api") for name in names
    )
    rows = []
    for sub in subscriptions():
        queue = queues.get(sub.queue, {})
        rows.append(
            ServiceStatus(
                service=sub.service,
                queue=sub.queue,
                processes=processes.get(sub.service, 0),
                consumers=consuming.get(sub.queue, 0),
                paused=paused.get(sub.queue, 0),
                ready=int(queue.get("messages_ready") or 0),
                unacked=int(queue.get("messages_unacknowledged") or 0),
                dead_letters=int(queues.get(dead_letter_queue(sub.queue), {}).get("messages") or 0),
                in_rate=_rate(queue, "publish"),
                out_rate=_rate(queue, "ack"),
            )
        )
    return rows


def render(rows: list[ServiceStatus]) -> Table:
    """The status table."""
    from rich.table import Table  # rich is imported by the command, not by `warren worker`

    table = Table(title="Warren services")
    for column in (
        "service",
        "queue",
        "state",
        "processes",
        "consumers",
        "paused",
        "ready",
        "unacked",
        "DLQ",
        "in/s",
        "acked/s",
    ):
        left = column in {"service", "queue", "state"}
        table.add_column(column, justify="left" if left else "right")
    for r in rows:
        dlq = f"[red]{r.dead_letters}[/red]" if r.dead_letters else "0"
        table.add_row(
            r.service,
            r.queue,
            f"[yellow]{r.state}[/yellow]" if r.state == "paused" else r.state,
            str(r.processes),
            str(r.consumers),
            str(r.paused),
            str(r.ready),
            str(r.unacked),
            dlq,
            f"{r.in_rate:.1f}",
            f"{r.out_rate:.1f}",
        )
    return table


def status(
    once: Annotated[bool, typer.Option(help="Print one snapshot and exit.")] = False,
    every: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
) -> None:
    """Show services, processes, queue depths and rates, and outbox backlogs (live until Ctrl-C)."""
    from rich.console import Console, Group
    from rich.live import Live

    settings = get_settings()

    async def view() -> Group:
        queues, outboxes = await asyncio.gather(snapshot(settings), outbox_snapshot(settings))
        return Group(render(queues), render_outboxes(outboxes))

    if once:
        Console().print(asyncio.run(view()))
        return

    async def watch() -> None:
        with Live(await view(), refresh_per_second=4) as live:
            while True:
                await asyncio.sleep(every)
                live.update(await view())

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch())
