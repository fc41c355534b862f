"""`warren dlq list | show | replay | purge | export`: the operator's side of dead letters."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from aiormq.exceptions import AMQPConnectionError, AMQPError, ChannelInvalidStateError

from config.settings import get_settings
from workers.ops.dead_letter import Filters, parse_when
from workers.ops.dlq import browse, export, list_dlqs, purge
from workers.ops.dlq_replay import ReplayError, ReplayReport, replay
from workers.ops.dlq_scan import QueueNotFound
from workers.ops.dlq_view import PREVIEW_ROWS, letter_json, letters_table, summaries_table
from workers.ops.doctor import redact

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(no_args_is_help=True)


# rich and httpx are imported when a dlq command runs: `warren worker` loads this module too.
@cache
def out() -> Console:
    """Standard output."""
    from rich.console import Console

    return Console()


@cache
def err() -> Console:
    """Standard error: errors and progress."""
    from rich.console import Console

    return Console(stderr=True)


Queue = Annotated[str, typer.Argument(help="The dead-letter queue, e.g. orders.saga.dlq.")]
Ids = Annotated[list[str] | None, typer.Option("--id", help="A message id (repeat for several).")]


def _when_option(text: str | None) -> datetime | None:
    try:
        return parse_when(text) if text else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _fail(message: str, code: int = 1) -> NoReturn:
    err().print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def _explained() -> Iterator[None]:
    """Turn the failures an operator can act on into one clear line and exit code 1."""
    import httpx

    try:
        yield
    except (QueueNotFound, ReplayError) as exc:
        _fail(str(exc))
    except (AMQPConnectionError, ConnectionError) as exc:
        url = redact(get_settings().amqp_url())
        _fail(f"cannot reach RabbitMQ at {url} ({exc}); `warren doctor` checks the services")
    except httpx.HTTPError as exc:
        url = get_settings().management_url
        _fail(f"the management API at {url} failed ({exc}); `warren doctor` checks it")
    except (AMQPError, ChannelInvalidStateError) as exc:
        _fail(
            f"the broker closed the channel ({exc or type(exc).__name__}); nothing was lost: "
            "what was not replayed or purged is still in the queue. Run the command again."
        )


@app.command("list")
def list_command() -> None:
    """Every dead-letter queue with its depth, oldest dead letter and top failure reasons."""
    with _explained():
        summaries = asyncio.run(list_dlqs(get_settings()))
    out().print(summaries_table(summaries))


@app.command("show")
def show_command(
    queue: Queue,
    limit: Annotated[int, typer.Option(min=1, help="How many, from the head.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """The dead letters at the head of QUEUE, without removing any."""
    with _explained():
        letters = asyncio.run(browse(get_settings(), queue, limit))
    if as_json:
        typer.echo(json.dumps([letter_json(letter) for letter in letters], indent=2))
        return
    out().print(letters_table(letters, f"{queue}: first {len(letters)}"))
    for letter in letters[:PREVIEW_ROWS]:
        out().print(f"[bold]{letter.message_id}[/bold] {letter.exception_message or ''}")
        out().print(f"  {letter.body_preview}", highlight=False, markup=False)


def _filters(
    ids: list[str] | None,
    type_: str | None,
    reason: str | None,
    exception: str | None,
    since: str | None,
    until: str | None,
) -> Filters:
    return Filters(
        ids=frozenset(ids or ()),
        type=type_,
        reason=reason,
        exception=exception,
        since=_when_option(since),
        until=_when_option(until),
    )


def _confirm_replay(queue: str, filters: Filters, limit: int | None) -> bool:
    """Count what matches, then ask; refuse when nobody can answer."""
    with _explained():
        preview = asyncio.run(replay(get_settings(), queue, filters, limit=limit, dry_run=True))
    matched = len(preview.matched)
    if matched == 0:
        out().print(f"no dead letter in {queue} matches; nothing to replay")
        return False
    if not sys.stdin.isatty():
        _fail(
            f"refusing to replay {matched} message(s) from {queue} without confirmation: "
            "stdin is not a terminal. Pass --yes to replay, or --dry-run to preview.",
            code=2,
        )
    return typer.confirm(f"Replay {matched} message(s) from {queue}?", abort=True)


def _run_replay(
    queue: str, filters: Filters, limit: int | None, rate: float | None, dry_run: bool
) -> ReplayReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err(), transient=True) as bar:
        task = bar.add_task("scanning", total=None)

        def advance(report: ReplayReport) -> None:
            what = "matched" if report.dry_run else "replayed"
            count = len(report.matched) if report.dry_run else report.replayed
            bar.update(task, total=report.depth, completed=report.scanned)
            bar.update(task, description=f"{count} {what}")

        with _explained():
            job = replay(
                get_settings(),
                queue,
                filters,
                limit=limit,
                rate=rate,
                dry_run=dry_run,
                progress=advance,
            )
            return asyncio.run(job)


@app.command("replay")
def replay_command(
    queue: Queue,
    ids: Ids = None,
    type_: Annotated[str | None, typer.Option("--type", help="orders.PlaceOrder[.v2]")] = None,
    reason: Annotated[str | None, typer.Option(help="poison, exhausted or crash-loop.")] = None,
    exception: Annotated[str | None, typer.Option(help="Exception type name.")] = None,
    since: Annotated[str | None, typer.Option(help="Failed at or after: ISO or 2h.")] = None,
    until: Annotated[str | None, typer.Option(help="Failed at or before: ISO or 10m.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Replay at most N.")] = None,
    rate: Annotated[float | None, typer.Option(min=0.01, help="At most R per second.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what matches.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Republish matching dead letters to their original destination, oldest first."""
    filters = _filters(ids, type_, reason, exception, since, until)
    if not (dry_run or yes) and not _confirm_replay(queue, filters, limit):
        raise typer.Exit(0)
    report = _run_replay(queue, filters, limit, rate, dry_run)
    if dry_run:
        out().print(letters_table(report.matched, f"would replay from {queue}"))
        out().print(f"dry run: {len(report.matched)} message(s) would be replayed; nothing moved")
        return
    out().print(
        f"replayed {report.replayed} message(s) from {queue} "
        f"(scanned {report.scanned} of {report.depth}); the rest stay in order"
    )


@app.command("purge")
def purge_command(
    queue: Queue,
    ids: Ids = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really delete.")] = False,
) -> None:
    """Delete the dead letters of QUEUE for good: all of them, or only the given --id ones."""
    what = f"{len(ids)} listed message(s)" if ids else "every message"
    if not yes:
        _fail(
            f"purge deletes {what} of {queue} for good; pass --yes to confirm "
            f"(`warren dlq export {queue} FILE` keeps a copy first)",
            code=2,
        )
    with _explained(), err().status(f"purging {queue}"):
        removed = asyncio.run(purge(get_settings(), queue, frozenset(ids or ())))
    out().print(f"purged {removed} message(s) from {queue}")


@app.command("export")
def export_command(
    queue: Queue,
    file: Annotated[Path, typer.Argument(help="Where to write JSON lines.", dir_okay=False)],
) -> None:
    """Write every dead letter of QUEUE to FILE as JSON lines; nothing is removed."""
    with _explained(), err().status(f"exporting {queue}"):
        written = asyncio.run(export(get_settings(), queue, file))
    out().print(f"exported {written} message(s) from {queue} to {file}")
