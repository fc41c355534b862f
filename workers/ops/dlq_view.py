"""How `warren dlq` shows dead letters: rich tables and JSON, nothing else."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from workers.ops.dead_letter import DeadLetter
from workers.ops.dlq import DlqSummary
from workers.ops.dlq_replay import destination

if TYPE_CHECKING:
    from rich.table import Table  # imported when a table is drawn (`warren worker` never does)

PREVIEW_ROWS = 50


def _age(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def summaries_table(summaries: list[DlqSummary]) -> Table:
    """One row per DLQ: depth, age of the oldest dead letter, top reasons."""
    from rich.table import Table

    table = Table("queue", "messages", "oldest", "top reasons", title="dead-letter queues")
    for summary in summaries:
        reasons = ", ".join(f"{reason} x{n}" for reason, n in summary.reasons) or "-"
        if summary.browsed < summary.messages:
            reasons += f" (of the first {summary.browsed})"
        table.add_row(summary.queue, str(summary.messages), _age(summary.oldest_age), reasons)
    return table


def letters_table(letters: list[DeadLetter], title: str) -> Table:
    """One row per dead letter (the first PREVIEW_ROWS)."""
    from rich.table import Table

    table = Table("#", "message id", "type", "reason", "exception", "attempts", "failed at")
    table.add_column("destination")
    table.add_column("replays")
    table.title = title
    if len(letters) > PREVIEW_ROWS:
        table.caption = f"the first {PREVIEW_ROWS} of {len(letters)}"
    for number, letter in enumerate(letters[:PREVIEW_ROWS], start=1):
        exchange, key = _destination(letter)
        table.add_row(
            str(number),
            letter.message_id or "-",
            letter.type or "-",
            letter.reason,
            letter.exception_type or "-",
            str(letter.attempts) if letter.attempts is not None else "-",
            _when(letter.failed_at),
            f"{exchange or '(default)'} / {key}",
            str(letter.replay_count),
        )
    return table


def _destination(letter: DeadLetter) -> tuple[str, str]:
    try:
        return destination(letter)
    except LookupError:
        return "?", "?"


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as JSON-ready fields, times in ISO 8601."""
    fields = asdict(letter)
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}
