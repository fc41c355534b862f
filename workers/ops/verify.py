"""`warren verify`: every service reports its facts, then every service's checks run on them.

Each service reads only its own database (read-only) through the `Verification` it declares
(workers/runtime/checks.py); on top, every outbox must be empty of unpublished rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import func, inspect
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from outbox.db import create_engine, session_factory
from outbox.tables import OUTBOX, OutboxMessage
from workers.runtime.checks import Finding, Verification
from workers.runtime.declaration import Service
from workers.runtime.discovery import services

__all__ = ["Finding", "pending_outbox", "verify"]


async def _started(session: AsyncSession) -> bool:
    """Whether the service ever started on this database (its outbox table exists).

    A service that never started has recorded nothing: it reports no facts. A database that
    cannot be reached is still an error.
    """
    connection = await session.connection()
    return await connection.run_sync(lambda sync: inspect(sync).has_table(OUTBOX.name))


@asynccontextmanager
async def _session(settings: Settings, service: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(settings.database_url(service))
    try:
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def pending_outbox(settings: Settings, declared: Iterable[Service]) -> list[Finding]:
    """Unpublished outbox rows in each service's database."""
    found = []
    for service in declared:
        try:
            async with _session(settings, service.name) as session:
                if not await _started(session):
                    continue
                query = select(func.count()).where(col(OutboxMessage.published_at).is_(None))
                pending = int((await session.exec(query)).one())
        except DBAPIError:
            if service.kind == "worker":
                raise
            continue  # this deployment has no gateway database (yet): nothing can be pending
        if pending:
            problem = f"{pending} message(s) not yet published"
            found.append(Finding(f"outbox of {service.name}", problem))
    return found


async def verify(settings: Settings, *, stuck_after: timedelta | None = None) -> list[Finding]:
    """Every finding across the services' databases; an empty list means all is conserved."""
    declared: list[tuple[Service, Verification]] = [
        (s, v) for s in services() if (v := s.load("verify")) is not None
    ]
    facts: dict[str, Any] = {}
    started: list[Verification] = []
    for service, verification in declared:
        try:
            async with _session(settings, service.name) as session:
                if await _started(session):
                    facts |= await verification.collect(session)
                    started.append(verification)
        except DBAPIError:
            if service.kind == "worker":
                raise
            # this deployment has no gateway database (yet): it accepts nothing
    found = [
        finding
        for verification in started
        if verification.check is not None
        for finding in verification.check(facts, settings, stuck_after)
    ]
    return found + await pending_outbox(settings, services())
