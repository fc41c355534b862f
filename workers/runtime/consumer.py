"""The one place that handles deliveries: decode, inbox, handler, outbox, commit, then ack.

Deliveries that arrive while a transaction runs are handled together in the next one (up to
`handler_batch_size`): one inbox insert, each handler in turn, one flush of their writes, one
commit, then an ack for each. A message whose handler raises is taken out of its batch and
handled alone; a write that fails only at the batch's flush or commit cannot be blamed on one
message, so each message of that batch is handled alone. Either way every retry and dead-letter
decision is still made for one message.

A transient failure gets a few short in-process retries here; what happens next (delayed retry
or `Q.dlq`) is decided in `decisions.py` and carried out, confirm before ack, by `routing.py`.

See `docs/architecture.md`, "Handling a message".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
    suppress,
)
from dataclasses import replace
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from loguru import logger
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.errors import PoisonMessage
from contracts.registry import Registry, default_registry
from outbox.amqp import ConfirmedPublisher, connection_name
from outbox.crashpoints import crashpoint
from outbox.db import HeldConnection, SessionFactory
from outbox.statements import CLAIM_INBOX
from outbox.tables import utcnow
from outbox.unit_of_work import Dispatcher, UnitOfWork
from workers.runtime import metrics, tracing
from workers.runtime.batch import Batches
from workers.runtime.decisions import is_permanent, split_batch
from workers.runtime.failures import FailureReason
from workers.runtime.isolation import CRASHES_TO_CONVICT, CrashJournals, WorkerCrashed
from workers.runtime.outages import Pause, is_infrastructure
from workers.runtime.routing import FailureRouter

Handler = Callable[[Envelope[Any], UnitOfWork], Awaitable[None]]
Delivery = tuple[AbstractIncomingMessage, Envelope[Any]]
Result = tuple[str, float]  # the outcome and the seconds it took


class _HandlerFailed(Exception):
    """The handler of the `index`-th message of a batch raised `error`."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index, self.error = index, error


async def _outcome(result: Awaitable[Result]) -> Result | Exception:
    try:
        return await result
    except Exception as exc:
        return exc


def _context(envelope: Envelope[Any]) -> dict[str, str]:
    """What every log line about this message carries."""
    context = {"trace_id": tracing.trace_id(envelope.traceparent) or ""}
    if (order_id := getattr(envelope.message, "order_id", None)) is not None:
        context["order_id"] = str(order_id)
    return context


class NoHandler(PoisonMessage):
    """A valid message that this queue has no handler for."""


class Consumer:
    """Consumes one work queue with a dispatch table of handlers keyed by contract name."""

    def __init__(
        self,
        *,
        service: str,
        queue: str,
        handlers: Mapping[str, Handler],
        sessions: SessionFactory,
        publisher: ConfirmedPublisher,
        settings: Settings,
        registry: Registry | None = None,
        on_commit: Callable[[], None] | None = None,
        dispatcher: Dispatcher | None = None,
        permanent_errors: tuple[type[BaseException], ...] = (),
        spans: tracing.Spans | None = None,
        connection: HeldConnection | None = None,
    ) -> None:
        """`connection`, when given, is where the handler transactions run while it is free
        (one at a time; the others, such as a redelivery handled alone beside a batch, check
        one out of `sessions`' pool); `close` gives it back."""
        self.service, self.queue = service, queue
        self._held = connection
        self._spans = spans or tracing.Spans(service)
        self._handlers = handlers
        self._sessions = sessions
        self._settings = settings
        self._registry = registry or default_registry()
        self._on_commit = on_commit
        self._dispatcher = dispatcher
        self._permanent = permanent_errors
        self._failures = FailureRouter(
            queue=queue,
            worker=connection_name(f"{service}-worker"),
            publisher=publisher,
            settings=settings,
            permanent=permanent_errors,
        )
        self._inflight: set[asyncio.Task[Any]] = set()
        self.pause = Pause(queue)
        self._journal = CrashJournals(queue, sessions)
        batch_size = min(settings.handler_batch_size, settings.prefetch)
        self._batches: Batches[Delivery, Result] = Batches(self._run_batch, batch_size)

    @property
    def prefetch(self) -> int:
        """How many deliveries may be in hand at once (the concurrency limit)."""
        return self._settings.prefetch

    async def close(self) -> None:
        """Give back the held connection (after `drain`, before the engine is disposed of)."""
        if self._held is not None:
            await self._held.close()

    @asynccontextmanager
    async def _unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """One handler transaction, on the held connection while it is free, else the pool's."""
        held: AbstractAsyncContextManager[AsyncConnection | None] = (
            nullcontext() if self._held is None else self._held.use()
        )
        async with (
            held as connection,
            UnitOfWork(
                self._sessions,
                registry=self._registry,
                on_commit=self._on_commit,
                dispatcher=self._dispatcher,
                connection=connection,
            ) as uow,
        ):
            yield uow

    async def drain(self, timeout: float) -> None:
        """Finish the deliveries in hand, for at most `timeout` seconds (consuming has stopped)."""
        if self._inflight:
            logger.info("draining {} in-flight messages", len(self._inflight))
            await asyncio.wait(set(self._inflight), timeout=timeout)

    async def deliver(self, incoming: AbstractIncomingMessage) -> None:
        """What the edge calls per delivery: handle it, counted as in flight until settled."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            with logger.contextualize(
                message_id=incoming.message_id,
                correlation_id=incoming.correlation_id,
                message_type=incoming.type,
                queue=self.queue,
            ):
                await self.handle(incoming)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def handle(self, incoming: AbstractIncomingMessage) -> None:
        """Handle one delivery and settle it: ack, or route its failure, exactly once."""
        if incoming.redelivered and incoming.message_id:  # it may have killed a worker
            async with self._journal.alone:
                outcome = await self._settle_alone(incoming, incoming.message_id)
        else:
            outcome = await self._settle(incoming)
        metrics.HANDLED.labels(self.queue, incoming.type or "<none>", outcome).inc()

    async def _settle(self, incoming: AbstractIncomingMessage, alone: bool = False) -> str:
        type_name = incoming.type or "<none>"
        try:
            envelope = self._decode(incoming)
            outcome, elapsed = await self._until_through((incoming, envelope), alone)
        except Exception as exc:
            return await self._failures.route(incoming, exc, self.pause)
        crashpoint("worker-after-commit")
        await incoming.ack()  # if the channel is gone, the redelivery meets the inbox
        metrics.HANDLER_SECONDS.labels(self.queue, type_name).observe(elapsed)
        with logger.contextualize(**_context(envelope)):
            logger.debug("{} {} in {:.1f} ms", outcome, incoming.type, elapsed * 1000)
        return outcome

    async def _settle_alone(self, incoming: AbstractIncomingMessage, message_id: str) -> str:
        """A redelivery, alone under the crash journal (`isolation.py`): run, or convict it."""
        try:
            crashes = await self._journal.begin(message_id)
        except Exception as exc:  # no journal (an outage): handled like any delivery
            logger.warning("crash journal unavailable ({}); handling {}", exc, message_id)
            return await self._settle(incoming, alone=True)
        if crashes >= CRASHES_TO_CONVICT and not await self._journal.handled(message_id):
            crashed = WorkerCrashed(f"a worker died {crashes} times handling it alone")
            outcome = await self._failures.route(
                incoming, crashed, self.pause, FailureReason.CRASH_LOOP
            )
        else:
            outcome = await self._settle(incoming, alone=True)
        with suppress(Exception):  # a row left behind costs a later redelivery one count
            await self._journal.end(message_id)
        return outcome

    async def _until_through(self, delivery: Delivery, alone: bool = False) -> Result:
        """Handle a delivery, holding it through any outage: an outage costs it no attempt."""
        while True:
            async with self.pause.attempt():
                try:
                    result = await (
                        self._alone(*delivery) if alone else self._batches.submit(delivery)
                    )
                except Exception as exc:
                    if not is_infrastructure(exc):
                        await self.pause.succeeded()  # the dependencies answered
                        raise
                    await self.pause.failed(exc)
                    continue
            await self.pause.succeeded()
            return result

    async def _run_batch(self, deliveries: list[Delivery]) -> list[Result | Exception]:
        """Handle deliveries in one transaction; on a failure, split as `split_batch` decides.

        The message a failure is blamed on is tried alone, its try in the batch counting as its
        first attempt; every other part goes through this method again.
        """
        if len(deliveries) <= 1:
            return [await _outcome(self._alone(*delivery)) for delivery in deliveries]
        metrics.BATCH_SIZE.labels(self.queue).observe(len(deliveries))
        started = time.perf_counter()
        try:
            await self._process_together(deliveries)
        except _HandlerFailed as failed:
            if is_infrastructure(failed.error):
                return [failed.error] * len(deliveries)
            outcomes: list[Result | Exception] = []
            for part in split_batch(deliveries, failed.index):
                if part[0] is deliveries[failed.index]:
                    outcomes.append(await _outcome(self._alone(*part[0], failed=failed.error)))
                else:
                    outcomes += await self._run_batch(list(part))
            return outcomes
        except Exception as exc:
            if is_infrastructure(exc):  # not one message's fault: every one of them waits
                return [exc] * len(deliveries)
            logger.warning("a batch of {} failed ({!r}); handling each alone", len(deliveries), exc)
            return [await _outcome(self._alone(*part[0])) for part in split_batch(deliveries, None)]
        elapsed = time.perf_counter() - started
        return [("handled", elapsed)] * len(deliveries)

    async def _process_together(self, deliveries: list[Delivery]) -> None:
        async with self._unit_of_work() as uow:
            claims = [
                {
                    "consumer": self.queue,
                    "message_id": envelope.message_id,
                    "processed_at": utcnow(),
                }
                for _, envelope in deliveries
            ]
            await uow.session.run_sync(CLAIM_INBOX.execute_in, claims)  # a duplicate fails it
            for index, (incoming, envelope) in enumerate(deliveries):
                with self._scope(incoming, envelope) as traced:
                    try:
                        await self._handlers[traced.message.NAME](traced, uow)
                    except Exception as exc:
                        raise _HandlerFailed(index, exc) from exc
            crashpoint("worker-before-commit")
            await uow.commit()

    async def _alone(
        self,
        incoming: AbstractIncomingMessage,
        envelope: Envelope[Any],
        failed: Exception | None = None,
    ) -> Result:
        started = time.perf_counter()
        with self._scope(incoming, envelope) as traced:
            if failed is None:
                try:  # the usual case, without the retry machinery
                    return await self._process(traced), time.perf_counter() - started
                except Exception as exc:
                    failed = exc
            if is_infrastructure(failed):  # no immediate retries: the consumer pauses
                raise failed
            outcome = await self._process_with_immediate_retries(traced, failed)
        return outcome, time.perf_counter() - started

    @contextmanager
    def _scope(
        self, incoming: AbstractIncomingMessage, envelope: Envelope[Any]
    ) -> Iterator[Envelope[Any]]:
        """The message's span and log context; yields it as this hop sends it on."""
        with self._spans.span(
            f"{self.queue} process {envelope.message.NAME}", envelope.traceparent
        ) as own:
            traced = replace(envelope, traceparent=own)  # what this hop sends continues it
            with logger.contextualize(
                message_id=incoming.message_id,
                correlation_id=incoming.correlation_id,
                message_type=incoming.type,
                queue=self.queue,
                **_context(traced),
            ):
                yield traced

    def _decode(self, incoming: AbstractIncomingMessage) -> Envelope[Any]:
        envelope = self._registry.decode(
            incoming.body,
            type_name=incoming.type,
            message_id=incoming.message_id,
            correlation_id=incoming.correlation_id,
            timestamp=incoming.timestamp,
            headers=incoming.headers,
        )
        if envelope.message.NAME not in self._handlers:
            raise NoHandler(f"queue {self.queue} has no handler for {envelope.message.NAME}")
        return envelope

    async def _process_with_immediate_retries(
        self, envelope: Envelope[Any], failed: Exception | None = None
    ) -> str:
        """Process, retrying a transient failure a few times; `failed` is a first attempt made."""

        def count(_: RetryCallState) -> None:
            metrics.RETRIES.labels(self.queue, "immediate").inc()

        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + self._settings.immediate_retries),
            wait=wait_random_exponential(multiplier=self._settings.immediate_retry_base_s, max=2),
            retry=retry_if_exception(
                lambda exc: not is_permanent(exc, self._permanent) and not is_infrastructure(exc)
            ),
            before_sleep=count,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if (first := failed) is not None:
                    failed = None
                    raise first
                return await self._process(envelope)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _process(self, envelope: Envelope[Any]) -> str:
        async with self._unit_of_work() as uow:
            claim = {
                "consumer": self.queue,
                "message_id": envelope.message_id,
                "processed_at": utcnow(),
            }
            try:
                await uow.session.run_sync(CLAIM_INBOX.execute_in, [claim])
            except IntegrityError:
                metrics.DUPLICATES.labels(self.queue).inc()
                logger.info("duplicate {} absorbed", envelope.message_id)
                return "duplicate"
            await self._handlers[envelope.message.NAME](envelope, uow)
            crashpoint("worker-before-commit")
            await uow.commit()
        return "handled"
