"""Wakes long-polling requests when the projection changes an order in this process."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Protocol


class Status(Protocol):
    """An order's or a user's status: a long-poll ends on a terminal one."""

    @property
    def is_terminal(self) -> bool: ...


class Notifier:
    """Per-order (or per-user) wake-ups carrying the new status; a waiter also times out, so a
    missed wake-up costs at most one poll interval."""

    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Future[Status | None]]] = defaultdict(set)
        self.closing = False

    def close(self) -> None:
        """The server is stopping: release every waiter now, and make new waits return at once."""
        self.closing = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def changed(self, order_id: str, status: Status) -> None:
        """Tell everyone waiting on this order its new status."""
        for waiter in self._waiters.get(order_id, ()):
            if not waiter.done():
                waiter.set_result(status)

    async def wait(self, order_id: str, timeout: float) -> Status | None:
        """The order's new status when it changes; None after `timeout` or when stopping."""
        if self.closing:
            return None
        waiter: asyncio.Future[Status | None] = asyncio.get_running_loop().create_future()
        self._waiters[order_id].add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(waiter, timeout)
            return None
        finally:
            self._waiters[order_id].discard(waiter)
            if not self._waiters[order_id]:
                del self._waiters[order_id]
