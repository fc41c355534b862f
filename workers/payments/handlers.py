"""Capture and refund, each at most once per order: the payment row is the idempotency record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from sqlalchemy.exc import IntegrityError

from contracts.envelope import Envelope
from contracts.payments import (
    CapturePayment,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
)
from outbox.statements import KeyedRows
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.payments.model import ALREADY_CANCELLED, Approved, ChargeOutcome, PaymentStatus
from workers.payments.provider import CardProvider
from workers.payments.tables import Payment
from workers.runtime.errors import TransientError

PAYMENTS = KeyedRows(Payment)  # read and written on the transaction's cursor, not the ORM
PaymentHandler = Callable[[Envelope[Any], UnitOfWork, CardProvider], Awaitable[None]]


def _recorded(command: CapturePayment, outcome: ChargeOutcome) -> Payment:
    """The row that remembers what the provider answered for this order."""
    request: dict[str, Any] = {
        "order_id": command.order_id,
        "token": command.token,
        "amount_cents": command.amount_cents,
        "currency": command.currency,
    }
    if isinstance(outcome, Approved):
        return Payment(
            **request,
            status=PaymentStatus.CAPTURED,
            payment_id=outcome.payment_id,
            captured_at=utcnow(),
        )
    return Payment(**request, status=PaymentStatus.DECLINED, decline_reason=outcome.reason)


def _capture_reply(row: Payment) -> PaymentCaptured | PaymentDeclined | None:
    """The answer to a capture request, given what is recorded for the order."""
    if row.status == PaymentStatus.CAPTURED:
        assert row.payment_id is not None and row.currency is not None
        return PaymentCaptured(
            order_id=row.order_id,
            payment_id=row.payment_id,
            amount_cents=row.amount_cents,
            currency=row.currency,
        )
    if row.status == PaymentStatus.DECLINED:
        return PaymentDeclined(order_id=row.order_id, reason=row.decline_reason or "card declined")
    if row.status == PaymentStatus.VOIDED:
        return PaymentDeclined(order_id=row.order_id, reason=ALREADY_CANCELLED)
    return None  # refunded: the latest fact, PaymentRefunded, has been published already


def _refunded(row: Payment) -> PaymentRefunded:
    assert row.payment_id is not None
    return PaymentRefunded(
        order_id=row.order_id, payment_id=row.payment_id, amount_cents=row.amount_cents
    )


async def _insert(uow: UnitOfWork, row: Payment) -> None:
    try:
        await PAYMENTS.add(uow.session, row)
    except IntegrityError as exc:  # a concurrent delivery for the same order committed first
        raise TransientError(f"payment of order {row.order_id} written concurrently") from exc


async def capture_payment(
    envelope: Envelope[CapturePayment], uow: UnitOfWork, provider: CardProvider
) -> None:
    """Charge the order once; a repeated request gets the recorded answer, and no new charge."""
    command = envelope.message
    row = await PAYMENTS.get(uow.session, command.order_id)
    if row is None:
        outcome = await provider.capture(
            command.order_id, command.token, command.amount_cents, command.currency
        )
        row = _recorded(command, outcome)
        await _insert(uow, row)  # a refund's tombstone written meanwhile: retried, see below
    elif row.status == PaymentStatus.VOIDED:
        # a refund came first, maybe while this capture's charge was in flight: give it back
        await provider.refund(command.order_id)
        logger.info("capture of order {} after its refund: any charge given back", row.order_id)
    else:
        logger.info("payment of order {} already {}; answering again", row.order_id, row.status)
    reply = _capture_reply(row)
    if reply is not None:
        uow.publish(envelope.caused(reply))


async def refund_payment(
    envelope: Envelope[RefundPayment], uow: UnitOfWork, provider: CardProvider
) -> None:
    """Refund a captured payment once; before any capture, void it at the provider and here."""
    command = envelope.message
    row = await PAYMENTS.get(uow.session, command.order_id)
    if row is None:
        # a capture may be in flight or its answer lost: the provider refunds or voids its key
        refunded = await provider.refund(command.order_id)
        tombstone = Payment(
            order_id=command.order_id,
            status=PaymentStatus.VOIDED,
            payment_id=refunded,
            refund_reason=command.reason,
        )
        await _insert(uow, tombstone)
        logger.info("refund of order {} before any recorded capture: voided", command.order_id)
        return
    if row.status == PaymentStatus.CAPTURED:
        await provider.refund(command.order_id)
        row.status = PaymentStatus.REFUNDED
        row.refunded_at = utcnow()
        row.refund_reason = command.reason
        await PAYMENTS.update(uow.session, row, "status", "refunded_at", "refund_reason")
    if row.status == PaymentStatus.REFUNDED:
        uow.publish(envelope.caused(_refunded(row)))
    else:
        logger.info("refund of order {}: payment is {}, nothing to do", row.order_id, row.status)


HANDLERS: dict[str, PaymentHandler] = {
    CapturePayment.NAME: capture_payment,
    RefundPayment.NAME: refund_payment,
}
