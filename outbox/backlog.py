"""What waits in one database's outbox: pending, failing and unroutable rows, for operators."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import case, func, select
from sqlalchemy.engine import make_url

from outbox.db import create_engine, session_factory
from outbox.db import rows as fetch
from outbox.tables import OUTBOX, utcnow
from outbox.unroutable import Unroutable

# `_retry` in outbox/relay.py writes `last_error` as "<exception type>: <message>".
UNROUTABLE_ERROR = f"{Unroutable.__name__}:%"


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """Unpublished rows of one outbox; `failing` have failed at least once."""

    pending: int
    failing: int
    unroutable: int
    oldest_age_s: float
    last_error: str | None

    @property
    def in_error(self) -> bool:
        """Whether a person should look: some row keeps failing."""
        return self.failing > 0


_PENDING = OUTBOX.c.published_at.is_(None)
_FAILING = _PENDING & (OUTBOX.c.attempts > 0)
_UNROUTABLE = _FAILING & OUTBOX.c.last_error.like(UNROUTABLE_ERROR)
_COUNTS = select(
    func.count(),
    func.coalesce(func.sum(case((_FAILING, 1), else_=0)), 0),
    func.coalesce(func.sum(case((_UNROUTABLE, 1), else_=0)), 0),
    func.min(OUTBOX.c.created_at),
).where(_PENDING)
_LAST_ERROR = (
    select(OUTBOX.c.last_error).where(_FAILING).order_by(OUTBOX.c.created_at.desc()).limit(1)
)


def database_exists(url: str) -> bool:
    """False for a SQLite file that is not there (reading would create it); True otherwise."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return True
    return Path(parsed.database).exists()


async def read_backlog(url: str) -> OutboxBacklog:
    """Count the unpublished rows of the outbox at `url` (read only, no write lock)."""
    engine = create_engine(url, pool_size=1, read_only=True)
    try:
        async with session_factory(engine)() as session:
            pending, failing, unroutable, oldest = (await fetch(session, _COUNTS)).one()
            last_error = (await fetch(session, _LAST_ERROR)).scalar_one_or_none()
            await session.commit()
    finally:
        await engine.dispose()
    age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return OutboxBacklog(int(pending), int(failing), int(unroutable), age, last_error)
