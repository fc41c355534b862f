"""Redelivered messages are handled alone, under a crash journal, so a killer convicts only itself.

A message that kills its worker takes the whole prefetch window down with it, and the broker
counts the death against every delivery in hand: left alone, the quorum queue's delivery-limit
would dead-letter the innocent messages beside it too. So a redelivery (the broker says
`redelivered`) is handled on its own, one at a time, after a committed journal row saying so.
If the worker dies meanwhile, the next redelivery finds the row: after `CRASHES_TO_CONVICT`
such deaths the message goes to `Q.dlq` as `crash-loop`, without being run again.
See `docs/decisions.md`, "A message that kills its worker convicts only itself".
"""

from __future__ import annotations

import asyncio

from sqlalchemy import ColumnElement, and_, delete, update
from sqlmodel import col, select

from outbox.db import SessionFactory
from outbox.tables import CrashJournal, InboxMessage, utcnow

CRASHES_TO_CONVICT = 2  # one death alone could be an unrelated kill; two are a pattern


class WorkerCrashed(Exception):
    """The worker died while handling this message alone, again and again."""


class CrashJournals:
    """The journal of one consumer: which redelivery runs alone now, and how often it killed."""

    def __init__(self, consumer: str, sessions: SessionFactory) -> None:
        self.consumer = consumer
        self._sessions = sessions
        self.alone = asyncio.Lock()  # redeliveries run one at a time

    def _key(self, message_id: str) -> ColumnElement[bool]:
        return and_(
            col(CrashJournal.consumer) == self.consumer,
            col(CrashJournal.message_id) == message_id,
        )

    async def begin(self, message_id: str) -> int:
        """Record that `message_id` runs alone now; how many workers died running it before."""
        async with self._sessions() as session:
            query = select(col(CrashJournal.crashes)).where(self._key(message_id))
            before = (await session.exec(query)).first()
            if before is None:
                session.add(CrashJournal(consumer=self.consumer, message_id=message_id))
                await session.commit()
                return 0
            crashes = int(before) + 1  # its row outlived a run: that worker died
            await session.exec(
                update(CrashJournal)
                .where(self._key(message_id))
                .values(crashes=crashes, started_at=utcnow())
            )
            await session.commit()
            return crashes

    async def handled(self, message_id: str) -> bool:
        """Whether the inbox already holds `message_id` (it was handled before the death)."""
        async with self._sessions() as session:
            query = select(col(InboxMessage.message_id)).where(
                col(InboxMessage.consumer) == self.consumer,
                col(InboxMessage.message_id) == message_id,
            )
            return (await session.exec(query)).first() is not None

    async def end(self, message_id: str) -> None:
        """The message is settled: forget it."""
        async with self._sessions() as session:
            await session.exec(delete(CrashJournal).where(self._key(message_id)))
            await session.commit()
