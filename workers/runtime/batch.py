"""Natural batching: what arrives while one batch runs goes together into the next.

Under light load every batch holds one item and nothing waits for company; under load the batches
grow to `max_size`, so a fixed cost per batch (a transaction, a commit) is shared.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
MAX_YIELDS = 4  # turns of the event loop a batch waits for company, at most


class Batches(Generic[T, R]):
    """Runs `run` on batches of submitted items, one batch at a time, in arrival order.

    `run` answers one outcome per item, a result or the exception that item's submitter gets;
    if `run` itself raises, every item of that batch gets the exception.
    """

    def __init__(
        self, run: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]], max_size: int
    ) -> None:
        if max_size < 1:
            raise ValueError("a batch holds at least one item")
        self._run, self.max_size = run, max_size
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Wait for `item`'s outcome: its result, or its exception raised here."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._worker is None or self._worker.done():
            # A context of its own: the batch must not inherit the first submitter's log context.
            self._worker = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        while True:
            try:
                await self._gather()
            except BaseException:  # cancelled: nobody will settle what waits
                for _, future in self._pending:
                    future.cancel()
                raise
            if not self._pending:
                return
            batch, self._pending = (
                self._pending[: self.max_size],
                self._pending[self.max_size :],
            )
            try:
                outcomes = await self._run([item for item, _ in batch])
            except Exception as exc:  # handed to every submitter of the batch
                outcomes = [exc] * len(batch)
            except BaseException:  # cancelled: nobody will settle the rest
                for _, future in batch + self._pending:
                    future.cancel()
                raise
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def _gather(self) -> None:
        """Let the loop run before a batch is taken: deliveries read from the socket meanwhile
        join it (an inline SQLite transaction never yields to the loop), and the submitters of
        the last batch settle theirs. While more keep arriving, a few turns more."""
        for _ in range(MAX_YIELDS):
            waiting = len(self._pending)
            await asyncio.sleep(0)
            if len(self._pending) in (waiting, 0) or len(self._pending) >= self.max_size:
                return
