"""A unit of work: state changes and the messages they cause commit together.

See `docs/architecture.md`, "Handling a message".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope, WireMessage
from contracts.registry import Registry, default_registry
from contracts.topology import exchange_for, routing_key_for
from outbox.db import SessionFactory
from outbox.statements import ADD_TO_OUTBOX, MARK_PUBLISHED, marks
from outbox.tables import utcnow


class Dispatcher(Protocol):
    """Publishes outbox rows straight after their commit (`outbox.relay.Relay` is one).

    The rows are committed due only `hold` later: until then no relay takes them, so a row is
    published twice only if its direct publish failed or this process died first.
    """

    @property
    def hold(self) -> timedelta: ...

    def dispatch(self, rows: Sequence[dict[str, Any]]) -> None: ...

    def take_confirmed(self) -> list[str]:
        """The ids of the rows confirmed so far and not yet marked: the caller marks them
        published in its transaction, or gives them back if that transaction does not commit."""
        ...

    def give_back(self, ids: Sequence[str]) -> None:
        """Ids taken with `take_confirmed` whose marks were not committed."""
        ...


class UnitOfWork:
    """One transaction; `publish` and `send_later` add outbox rows to it.

    Its session is bound to `connection` when one is given (a connection held between
    transactions, `outbox.db.HeldConnection`), else it checks one out of the pool.
    """

    session: AsyncSession

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        registry: Registry | None = None,
        on_commit: Callable[[], None] | None = None,
        dispatcher: Dispatcher | None = None,
        connection: AsyncConnection | None = None,
    ) -> None:
        self._sessions = sessions
        self._connection = connection
        self._registry = registry or default_registry()
        self._on_commit = on_commit
        self._dispatcher = dispatcher
        self._rows: list[dict[str, Any]] = []
        self._committed = False
        self._after_commit: list[Callable[[], None]] = []

    async def __aenter__(self) -> Self:
        if self._connection is None:
            self.session = self._sessions()
        else:
            self.session = self._sessions(bind=self._connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            await self.session.rollback()
        await self.session.close()

    def publish(self, envelope: Envelope[Any]) -> None:
        """Publish a command or event to its exchange once this transaction commits."""
        model = type(envelope.message)
        self._add(self._registry.encode(envelope), exchange_for(model), routing_key_for(model))

    def send_later(self, envelope: Envelope[Any], queue: str, delay: timedelta) -> None:
        """Deliver a message straight to `queue` after `delay`, through the delay levels."""
        wire = self._registry.encode(envelope)
        self._add(wire, "", queue, deliver_at=utcnow() + delay)

    def _add(
        self, wire: WireMessage, exchange: str, routing_key: str, deliver_at: datetime | None = None
    ) -> None:
        self._rows.append(
            {
                "id": wire.message_id,
                "exchange": exchange,
                "routing_key": routing_key,
                "deliver_at": deliver_at,
                "type": wire.type,
                "correlation_id": wire.correlation_id,
                "headers": dict(wire.headers),
                "body": wire.body,
                "created_at": wire.timestamp,
                "available_at": utcnow(),
                "attempts": 0,
            }
        )

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this unit of work has committed (never if it rolls back)."""
        self._after_commit.append(callback)

    async def commit(self) -> None:
        """Commit the state change and its messages, then dispatch them (or wake the relay)."""
        if self._rows and self._dispatcher is not None:
            held = utcnow() + self._dispatcher.hold
            for row in self._rows:
                row["available_at"] = held
        confirmed = [] if self._dispatcher is None else self._dispatcher.take_confirmed()
        try:
            await self.session.run_sync(self._write_and_commit, confirmed)
        except BaseException:
            if confirmed and self._dispatcher is not None:
                self._dispatcher.give_back(confirmed)
            raise
        self._committed = True
        if self._rows and self._dispatcher is not None:
            self._dispatcher.dispatch(self._rows)
        elif self._rows and self._on_commit is not None:
            self._on_commit()
        for callback in self._after_commit:
            callback()

    def _write_and_commit(self, session: Session, confirmed: list[str]) -> None:
        """The outbox rows and the marks of rows dispatched earlier, then the commit (which
        flushes the handler's writes): one pass through SQLAlchemy's async bridge."""
        if self._rows or confirmed:
            connection = session.connection()
            ADD_TO_OUTBOX.execute(connection, self._rows)
            MARK_PUBLISHED.execute(connection, marks(confirmed))
        session.commit()

    async def rollback(self) -> None:
        """Discard everything done in this unit of work."""
        await self.session.rollback()
        self._rows.clear()
