"""The DLQ tools' logic: list, browse, replay, purge and export dead letters.

Nothing here prints. Browsing never removes a message: it takes them with `basic.get` and gives
them back in order (`dlq_scan`). Replay is implemented in `dlq_replay` and exported here.

See `docs/architecture.md`, "Failures, retries and dead letters".
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from config.settings import Settings
from workers.ops.dead_letter import FAILURE_HEADERS, DeadLetter, Filters
from workers.ops.dlq_replay import ReplayError, ReplayReport, replay
from workers.ops.dlq_scan import DlqScan, existing_queue, open_connection
from workers.ops.management import Management

__all__ = [
    "BROWSE_CAP",
    "FAILURE_HEADERS",
    "DeadLetter",
    "DlqSummary",
    "Filters",
    "ReplayError",
    "ReplayReport",
    "browse",
    "export",
    "list_dlqs",
    "purge",
    "replay",
]

BROWSE_CAP = 1000
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True, slots=True)
class DlqSummary:
    """One DLQ at a glance: depth, age of the oldest dead letter, most common reasons."""

    queue: str
    messages: int
    oldest_age: timedelta | None
    reasons: list[tuple[str, int]] = field(default_factory=list)
    browsed: int = 0


def _reason_key(letter: DeadLetter) -> str:
    return f"{letter.reason}: {letter.exception_type}" if letter.exception_type else letter.reason


async def list_dlqs(settings: Settings) -> list[DlqSummary]:
    """Every `*.dlq` queue of the vhost, peeked at (up to BROWSE_CAP messages each)."""
    async with Management(settings) as management:
        names = sorted(q["name"] for q in await management.queues() if _is_dlq(q))
    summaries = []
    for name in names:
        letters, depth = await _peek(settings, name, BROWSE_CAP)
        times = [t for t in (letter.failed_at for letter in letters) if t is not None]
        reasons = Counter(_reason_key(letter) for letter in letters).most_common(3)
        oldest = datetime.now(UTC) - min(times) if times else None
        summaries.append(DlqSummary(name, depth, oldest, reasons, len(letters)))
    return summaries


def _is_dlq(queue: dict[str, Any]) -> bool:
    scannable = queue.get("type", "classic") in ("classic", "quorum")
    return scannable and str(queue["name"]).endswith(DLQ_SUFFIX)


async def browse(settings: Settings, queue: str, limit: int = 50) -> list[DeadLetter]:
    """The first `limit` dead letters of `queue`, head first; nothing is removed."""
    letters, _ = await _peek(settings, queue, limit)
    return letters


async def _peek(settings: Settings, queue: str, limit: int) -> tuple[list[DeadLetter], int]:
    connection = await open_connection(settings)
    async with connection, DlqScan(settings, connection, queue) as scan:
        letters: list[DeadLetter] = []
        while len(letters) < limit and (message := await scan.next()) is not None:
            letters.append(DeadLetter.parse(message))
        return letters, scan.depth


async def purge(settings: Settings, queue: str, ids: frozenset[str] = frozenset()) -> int:
    """Delete every message of `queue`, or only those whose message id is in `ids`."""
    connection = await open_connection(settings)
    async with connection:
        if not ids:
            channel = await connection.channel()
            purged = await (await existing_queue(channel, queue)).purge()
            return int(purged.message_count or 0)
        removed = 0
        async with DlqScan(settings, connection, queue) as scan:
            while (message := await scan.next()) is not None:
                if message.message_id in ids:
                    await scan.remove(message)
                    removed += 1
        return removed


async def export(settings: Settings, queue: str, path: Path) -> int:
    """Write every message of `queue` to `path` as JSON lines; nothing is removed."""
    connection = await open_connection(settings)
    written = 0
    async with connection, DlqScan(settings, connection, queue) as scan:
        with path.open("w", encoding="utf-8") as out:
            while (message := await scan.next()) is not None:
                out.write(json.dumps(export_record(message), ensure_ascii=False) + "\n")
                written += 1
    return written


def export_record(message: AbstractIncomingMessage) -> dict[str, Any]:
    """A JSON-safe record of one message: properties, headers and body."""
    properties = {
        "message_id": message.message_id,
        "type": message.type,
        "correlation_id": message.correlation_id,
        "timestamp": message.timestamp,
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "delivery_mode": int(message.delivery_mode) if message.delivery_mode else None,
        "priority": message.priority,
        "app_id": message.app_id,
        "reply_to": message.reply_to,
        "expiration": message.expiration,
    }
    body, encoding = _body_text(message.body)
    return {
        "properties": _jsonable(properties),
        "headers": _jsonable(message.headers or {}),
        "body_encoding": encoding,
        "body": body,
    }


def _body_text(body: bytes) -> tuple[str, str]:
    try:
        text = body.decode("utf-8")
        json.loads(text)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        return base64.b64encode(body).decode("ascii"), "base64"
    return text, "utf-8"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value
