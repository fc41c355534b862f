"""Wakes long-polling requests when the projection changes an order in this process."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict


class Notifier:
    """Per-order wake-ups; a waiter also times out, so a missed wake-up costs at most a poll."""

    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self.closing = False

    def close(self) -> None:
        """The server is stopping: release every waiter now, and make new waits return at once."""
        self.closing = True
        for events in self._waiters.values():
            for event in events:
                event.set()

    def changed(self, order_id: str) -> None:
        """Wake everyone waiting on this order."""
        for event in self._waiters.get(order_id, ()):
            event.set()

    async def wait(self, order_id: str, timeout: float) -> None:
        """Return when the order changes, the server stops, or after `timeout` seconds."""
        if self.closing:
            return
        event = asyncio.Event()
        self._waiters[order_id].add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            self._waiters[order_id].discard(event)
            if not self._waiters[order_id]:
                del self._waiters[order_id]
