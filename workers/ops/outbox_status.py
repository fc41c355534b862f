"""The outbox part of `warren status`: rows each service's relay has not published yet."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.settings import Settings
from outbox.backlog import OutboxBacklog, database_exists, read_backlog
from workers.runtime.discovery import services

if TYPE_CHECKING:
    from rich.table import Table  # imported when a table is drawn (`warren worker` never does)

READ_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """One service's outbox, or why it could not be read."""

    service: str
    backlog: OutboxBacklog | None
    problem: str | None = None


async def _read(settings: Settings, service: str) -> OutboxStatus:
    url = settings.database_url(service)
    if not database_exists(url):
        return OutboxStatus(service, None, "no database yet")
    try:
        backlog = await asyncio.wait_for(read_backlog(url), READ_TIMEOUT_S)
    except Exception as exc:  # one unreadable database must not hide the others
        return OutboxStatus(service, None, f"unreadable: {type(exc).__name__}: {exc}"[:200])
    return OutboxStatus(service, backlog)


async def outbox_snapshot(settings: Settings) -> list[OutboxStatus]:
    """One reading of every service's outbox."""
    return list(
        await asyncio.gather(
            *(_read(settings, service) for service in (s.name for s in services()))
        )
    )


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.0f}h"


def render_outboxes(rows: list[OutboxStatus]) -> Table:
    """The outbox table; a service whose rows keep failing (or are unroutable) is an error row."""
    from rich.table import Table

    table = Table(title="Outboxes (unpublished rows)")
    for column in ("service", "pending", "failing", "unroutable", "oldest", "last error"):
        table.add_column(column, justify="left" if column in {"service", "last error"} else "right")
    for r in rows:
        b = r.backlog
        if b is None:
            table.add_row(r.service, "-", "-", "-", "-", r.problem or "", style="dim")
            continue
        table.add_row(
            r.service,
            str(b.pending),
            str(b.failing),
            str(b.unroutable),
            _age(b.oldest_age_s) if b.pending else "-",
            b.last_error or "",
            style="bold red" if b.in_error else None,
        )
    return table
