"""Infrastructure outages: told apart from message failures, and waited out by pausing.

A database that is unreachable or write-locked, or a broker that refuses a publish, is not the
message's fault. The consumer does not spend the message's retry budget on it: it pauses (stops
taking deliveries), holds what it has, tries one held message again with backoff as the probe,
and resumes by itself when that works. See `docs/decisions.md`, "An outage pauses the consumer".
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import aiormq.exceptions as amqp
from loguru import logger
from sqlalchemy import exc as sa

from outbox.backoff import retry_delay
from workers.runtime import metrics
from workers.runtime.errors import InfrastructureError


def _pg_down() -> tuple[type[BaseException], ...]:
    """asyncpg's errors that mean PostgreSQL is down; none while asyncpg is not loaded.

    A process on SQLite never imports asyncpg (about 2 MiB), and then none of its errors can
    be raised: the check imports nothing.
    """
    pg = sys.modules.get("asyncpg.exceptions")
    if pg is None:
        return ()
    return (
        pg.PostgresConnectionError,
        pg.InterfaceError,
        pg.CannotConnectNowError,
        pg.TooManyConnectionsError,
        pg.OperatorInterventionError,  # admin shutdown, crash shutdown, cancelled by the operator
        pg.IdleInTransactionSessionTimeoutError,
    )


_BROKER_DOWN = (
    amqp.AMQPConnectionError,
    amqp.ChannelInvalidStateError,
    amqp.ChannelClosed,
    amqp.ConnectionClosed,
)
_ALWAYS = (InfrastructureError, OSError, sa.InterfaceError, sa.TimeoutError)
# The probe's backoff: the first probe after about half a second, then at most every 5 s.
PROBE_BASE_S, PROBE_CAP_S = 0.5, 5.0


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and the errors it was raised from or while handling, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        if isinstance(current, sa.DBAPIError) and isinstance(current.orig, BaseException):
            yield current.orig  # the driver's own error, whether or not it was chained
        current = current.__cause__ or current.__context__


def _is_down(error: BaseException) -> bool:
    if isinstance(error, (*_ALWAYS, *_pg_down())):
        return True
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sqlite3.OperationalError):
        return "locked" in str(error) or "busy" in str(error)
    if isinstance(error, amqp.DeliveryError):  # a nack is a refusal; a return is a routing bug
        return error.message is None
    return isinstance(error, _BROKER_DOWN)


def is_infrastructure(error: BaseException) -> bool:
    """Whether a failure is an outage (a dependency down or locked), not the message's fault."""
    return any(_is_down(link) for link in _chain(error))


# The broker answered, and said no: waiting will not change its mind, someone has to act.
_REFUSALS = (
    amqp.ChannelPreconditionFailed,
    amqp.ChannelAccessRefused,
    amqp.ChannelNotFoundEntity,
    amqp.AuthenticationError,
    amqp.ConnectionNotAllowed,
)


def is_outage(error: BaseException) -> bool:
    """An outage that waiting ends (unreachable, closed, locked), not a refusal to be fixed.

    A declaration refused because a queue exists with other arguments, or a permission refused,
    closes the channel like an outage does; it is a fault for an operator, not an outage.
    """
    links = list(_chain(error))
    return any(_is_down(link) for link in links) and not any(
        isinstance(link, _REFUSALS) for link in links
    )


class Pause:
    """The paused state of one consumer: entered on an outage, left when a probe succeeds.

    While paused, attempts go through one at a time after a growing backoff: the first held
    message is the probe. The others wait for the resume instead of hammering a dependency.
    """

    def __init__(
        self,
        queue: str,
        *,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.queue = queue
        self.on_change = on_change  # told `True` on a pause, `False` on the resume; never waited on
        self._probing = asyncio.Lock()
        self._probes = 0
        self._since: float | None = None
        metrics.PAUSED.labels(queue).set(0)

    @property
    def paused(self) -> bool:
        """Whether the consumer is paused by an outage."""
        return self._since is not None

    async def failed(self, error: BaseException) -> None:
        """An attempt failed on an outage: pause (once), and count the failed probe."""
        if self._since is None:
            self._since, self._probes = time.monotonic(), 0
            metrics.PAUSED.labels(self.queue).set(1)
            metrics.PAUSES.labels(self.queue).inc()
            logger.warning(
                "paused consuming {}: infrastructure outage ({}: {}); holding what is in hand",
                self.queue,
                type(error).__name__,
                str(error)[:200],
            )
            if self.on_change is not None:
                self.on_change(True)
        self._probes += 1

    async def succeeded(self) -> None:
        """An attempt got through: the outage is over, resume consuming."""
        if self._since is None:
            return
        lasted, self._since = time.monotonic() - self._since, None
        metrics.PAUSED.labels(self.queue).set(0)
        logger.warning("resumed consuming {} after {:.1f}s paused", self.queue, lasted)
        if self.on_change is not None:
            self.on_change(False)

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[None]:
        """Around one attempt: free when running; paused, one probe at a time after backoff."""
        if self._since is None:
            yield
            return
        async with self._probing:
            if self._since is not None:
                delay = retry_delay(self._probes, base_s=PROBE_BASE_S, cap_s=PROBE_CAP_S)
                await asyncio.sleep(delay)
                yield
                return
        yield
