"""Deletes published outbox rows and old inbox rows after their retention."""

from __future__ import annotations

import time
from datetime import timedelta

from loguru import logger
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from config.settings import Settings
from outbox.db import session_factory
from outbox.metrics import OUTBOX_DELETED
from outbox.tables import InboxMessage, OutboxMessage, utcnow

RUN_EVERY_S = 300.0


class RetentionJob:
    """Runs at most every few minutes from the relay loop; cheap when there is nothing to do."""

    def __init__(self, service: str, engine: AsyncEngine, settings: Settings) -> None:
        self._service = service
        self._sessions = session_factory(engine)
        self._settings = settings
        self._last_run = 0.0

    async def maybe_run(self) -> None:
        """Delete expired rows if the last run is old enough."""
        if time.monotonic() - self._last_run < RUN_EVERY_S:
            return
        self._last_run = time.monotonic()
        await self.run()

    async def run(self) -> tuple[int, int]:
        """Delete expired rows now; the numbers of outbox and inbox rows deleted."""
        outbox_cutoff = utcnow() - timedelta(hours=self._settings.outbox_retention_hours)
        inbox_cutoff = utcnow() - timedelta(hours=self._settings.inbox_retention_hours)
        async with self._sessions() as session:
            outbox = await session.exec(
                delete(OutboxMessage).where(col(OutboxMessage.published_at) < outbox_cutoff)
            )
            inbox = await session.exec(
                delete(InboxMessage).where(col(InboxMessage.processed_at) < inbox_cutoff)
            )
            await session.commit()
        OUTBOX_DELETED.labels(self._service, "outbox_message").inc(outbox.rowcount)
        OUTBOX_DELETED.labels(self._service, "inbox_message").inc(inbox.rowcount)
        if outbox.rowcount or inbox.rowcount:
            logger.info(
                "retention deleted {} outbox and {} inbox rows", outbox.rowcount, inbox.rowcount
            )
        return outbox.rowcount, inbox.rowcount
