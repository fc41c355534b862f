"""Carries out a failed message's route (`decisions.route_failure`): copy, confirm, then ack.

Every copy (retry or dead letter) is confirmed by the broker before the original is acked; when
the broker refuses the copy, the original is requeued so that nothing is lost; during an outage
(`outages.py`) it is held instead, and the copy tried again when the consumer's probe gets through.
"""

from __future__ import annotations

from datetime import timedelta

from aio_pika.abc import AbstractIncomingMessage
from loguru import logger

from config.settings import Settings
from contracts.topology import DEAD_LETTER_EXCHANGE, dead_letter_queue
from outbox.amqp import ConfirmedPublisher, persistent_copy
from workers.runtime import metrics
from workers.runtime.decisions import DeadLetter, RetryLater, Route, route_failure
from workers.runtime.delay import Scheduler
from workers.runtime.failures import (
    RETRY_ATTEMPT,
    FailureReason,
    dead_letter_headers,
    failure_headers,
    retry_attempt,
)
from workers.runtime.outages import Pause, is_infrastructure


class FailureRouter:
    """Sends a failed delivery of one queue to a delayed retry or its dead-letter queue."""

    def __init__(
        self,
        *,
        queue: str,
        worker: str,
        publisher: ConfirmedPublisher,
        settings: Settings,
        permanent: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.queue, self._worker = queue, worker
        self._publisher = publisher
        self._scheduler = Scheduler(publisher, settings)
        self._settings = settings
        self._permanent = permanent

    async def route(
        self,
        incoming: AbstractIncomingMessage,
        exc: Exception,
        pause: Pause | None = None,
        reason: FailureReason | None = None,
    ) -> str:
        """Route the failure (to the DLQ at once with `reason`) and settle the delivery.

        A copy the broker refuses during an outage is held and tried again through `pause`.
        The outcome is for the metrics.
        """
        decision: Route = (
            DeadLetter(reason)
            if reason is not None
            else route_failure(
                exc, retry_attempt(incoming.headers), self._settings, self._permanent
            )
        )
        pause = pause or Pause(self.queue)
        while True:
            async with pause.attempt():
                try:
                    outcome = await self._carry_out(incoming, exc, decision)
                except Exception as routing_error:
                    if is_infrastructure(routing_error) and not incoming.channel.is_closed:
                        await pause.failed(routing_error)
                        continue
                    # the broker refused the copy for good: keep the original
                    logger.error(
                        "could not route failure of {}: {}", incoming.message_id, routing_error
                    )
                    if not incoming.channel.is_closed:
                        await incoming.reject(requeue=True)
                    return "requeued"
            await pause.succeeded()
            return outcome

    async def _carry_out(
        self, incoming: AbstractIncomingMessage, exc: Exception, decision: Route
    ) -> str:
        if isinstance(decision, RetryLater):
            await self._retry_later(incoming, exc, decision)
            return "retried"
        await self._dead_letter(incoming, exc, decision)
        return "dead-lettered"

    async def _retry_later(
        self, incoming: AbstractIncomingMessage, exc: Exception, retry: RetryLater
    ) -> None:
        headers = failure_headers(incoming, self.queue, exc) | {RETRY_ATTEMPT: retry.attempt}
        await self._scheduler.schedule(
            persistent_copy(incoming, headers), self.queue, timedelta(seconds=retry.delay_s)
        )
        await incoming.ack()
        metrics.RETRIES.labels(self.queue, "delayed").inc()
        logger.warning(
            "attempt {} failed ({}: {}); retrying in {:.2f}s",
            retry.attempt,
            type(exc).__name__,
            exc,
            retry.delay_s,
        )

    async def _dead_letter(
        self, incoming: AbstractIncomingMessage, exc: BaseException, dead: DeadLetter
    ) -> None:
        headers = dead_letter_headers(incoming, self.queue, exc, dead.reason, self._worker)
        dlq = dead_letter_queue(self.queue)
        await self._publisher.publish(persistent_copy(incoming, headers), DEAD_LETTER_EXCHANGE, dlq)
        await incoming.ack()
        metrics.DEAD_LETTERED.labels(self.queue, dead.reason.value).inc()
        logger.error(
            "dead-lettered to {} ({}): {}: {}", dlq, dead.reason.value, type(exc).__name__, exc
        )
