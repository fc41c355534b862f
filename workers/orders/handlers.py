"""The saga's handlers: each moves one order one step, or leaves it alone.

A reply is applied only while the order still waits for that step; anything later (after a
timeout or a cancellation) changes nothing, and the compensation already sent undoes it.

See `docs/architecture.md`, "The order saga".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import partial
from typing import Any
from uuid import UUID

from loguru import logger

from contracts.envelope import Envelope
from contracts.inventory import ReserveStock, StockRejected, StockReserved
from contracts.orders import (
    CancelOrder,
    OrderStatus,
    OrderStatusChanged,
    PlaceOrder,
    SagaStep,
    StepTimedOut,
)
from contracts.payments import CapturePayment, PaymentCaptured, PaymentDeclined, PaymentRefunded
from contracts.shipping import ArrangeShipment, ShipmentArranged
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.orders import store
from workers.orders.model import WAITING_ON, StepTimeouts, can_cancel, compensation, total_cents
from workers.orders.service import SERVICE
from workers.orders.tables import CustomerOrder
from workers.runtime.consumer import Handler

SAGA_QUEUE = SERVICE.queue
Env = Envelope[Any]


async def _waiting(uow: UnitOfWork, envelope: Env, status: OrderStatus) -> CustomerOrder | None:
    """The order if it still waits for the step of `status`; None for a late or stray reply."""
    order = await store.load(uow, envelope.message.order_id)
    if order is None or order.status != status:
        state = "unknown order" if order is None else f"order is {order.status}"
        logger.info("{} ignored: {}", envelope.message.NAME, state)
        return None
    return order


async def _move(
    uow: UnitOfWork,
    envelope: Env,
    order: CustomerOrder,
    status: OrderStatus,
    reason: str | None = None,
) -> None:
    order.status, order.reason = status, reason
    order.sequence += 1
    order.updated_at = utcnow()
    await store.save(uow, order)
    await _announce(uow, envelope, order)


async def _announce(uow: UnitOfWork, envelope: Env, order: CustomerOrder) -> None:
    await store.add_history(uow, order)
    uow.publish(
        envelope.caused(
            OrderStatusChanged(
                order_id=UUID(order.order_id),
                status=order.status,
                sequence=order.sequence,
                reason=order.reason,
                total_cents=order.total_cents,
                currency=order.currency,
            )
        )
    )


def _start_step(
    uow: UnitOfWork, envelope: Env, order: CustomerOrder, timeouts: StepTimeouts
) -> None:
    step = WAITING_ON[order.status]
    if timeouts.needs_own_timer(step):  # otherwise the order's live timer covers it
        _arm(uow, envelope, order, step, timeouts.of(step))


def _arm(
    uow: UnitOfWork, envelope: Env, order: CustomerOrder, step: SagaStep, delay: timedelta
) -> None:
    timer = StepTimedOut(order_id=UUID(order.order_id), step=step, sequence=order.sequence)
    uow.send_later(envelope.caused(timer), SAGA_QUEUE, delay)


async def _cancel(uow: UnitOfWork, envelope: Env, order: CustomerOrder, reason: str) -> None:
    for command in compensation(order, reason):
        uow.publish(envelope.caused(command))
    await _move(uow, envelope, order, OrderStatus.CANCELLED, reason)


async def place_order(timeouts: StepTimeouts, envelope: Env, uow: UnitOfWork) -> None:
    """Start the order's saga; an order whose cancel came first starts and ends cancelled."""
    cmd: PlaceOrder = envelope.message
    await store.lock(uow, cmd.order_id)
    if await store.load(uow, cmd.order_id) is not None:
        return
    cancelled = await store.take_cancel(uow, cmd.order_id)
    now = utcnow()
    order = CustomerOrder(
        order_id=str(cmd.order_id),
        customer_id=cmd.customer_id,
        status=OrderStatus.PENDING if cancelled is None else OrderStatus.CANCELLED,
        reason=cancelled,
        items=[line.model_dump() for line in cmd.items],
        currency=cmd.currency,
        payment_token=cmd.payment.token,
        shipping_address=cmd.shipping_address.model_dump(),
        created_at=now,
        updated_at=now,
    )
    await store.add(uow, order)
    await _announce(uow, envelope, order)
    if cancelled is not None:  # nothing was started, so there is nothing to compensate
        logger.info("order {} was cancelled before it was placed: {}", cmd.order_id, cancelled)
        return
    uow.publish(envelope.caused(ReserveStock(order_id=cmd.order_id, items=cmd.items)))
    _start_step(uow, envelope, order, timeouts)


async def stock_reserved(timeouts: StepTimeouts, envelope: Env, uow: UnitOfWork) -> None:
    event: StockReserved = envelope.message
    if (order := await _waiting(uow, envelope, OrderStatus.PENDING)) is None:
        return
    order.lines = [line.model_dump() for line in event.lines]
    order.total_cents = total_cents(order.lines)
    await _move(uow, envelope, order, OrderStatus.STOCK_RESERVED)
    capture = CapturePayment(
        order_id=event.order_id,
        amount_cents=order.total_cents,
        currency=order.currency,
        token=order.payment_token,
    )
    uow.publish(envelope.caused(capture))
    _start_step(uow, envelope, order, timeouts)


async def stock_rejected(envelope: Env, uow: UnitOfWork) -> None:
    event: StockRejected = envelope.message
    if (order := await _waiting(uow, envelope, OrderStatus.PENDING)) is not None:
        await _move(uow, envelope, order, OrderStatus.REJECTED, f"rejected: {event.reason}")


async def payment_captured(timeouts: StepTimeouts, envelope: Env, uow: UnitOfWork) -> None:
    event: PaymentCaptured = envelope.message
    if (order := await _waiting(uow, envelope, OrderStatus.STOCK_RESERVED)) is None:
        return
    order.payment_id = event.payment_id
    await _move(uow, envelope, order, OrderStatus.PAID)
    arrange = ArrangeShipment(
        order_id=event.order_id, items=order.items, shipping_address=order.shipping_address
    )
    uow.publish(envelope.caused(arrange))
    _start_step(uow, envelope, order, timeouts)


async def payment_declined(envelope: Env, uow: UnitOfWork) -> None:
    event: PaymentDeclined = envelope.message
    if (order := await _waiting(uow, envelope, OrderStatus.STOCK_RESERVED)) is None:
        return
    uow.publish(envelope.caused(compensation(order, event.reason)[0]))  # release the stock
    await _move(uow, envelope, order, OrderStatus.CANCELLED, f"payment declined: {event.reason}")


async def payment_refunded(envelope: Env, uow: UnitOfWork) -> None:
    event: PaymentRefunded = envelope.message
    logger.info(
        "order {} refunded {} cents ({})", event.order_id, event.amount_cents, event.payment_id
    )


async def shipment_arranged(envelope: Env, uow: UnitOfWork) -> None:
    event: ShipmentArranged = envelope.message
    if (order := await _waiting(uow, envelope, OrderStatus.PAID)) is not None:
        order.carrier, order.tracking_number = event.carrier, event.tracking_number
        await _move(uow, envelope, order, OrderStatus.CONFIRMED)


async def cancel_order(envelope: Env, uow: UnitOfWork) -> None:
    """Cancel and compensate; a cancel that overtook its order is kept until the order comes."""
    cmd: CancelOrder = envelope.message
    await store.lock(uow, cmd.order_id)
    order = await store.load(uow, cmd.order_id)
    if order is None:
        kept = await store.keep_cancel(uow, cmd.order_id, cmd.reason)
        logger.info("cancel of {} before its order: {}", cmd.order_id, "kept" if kept else "again")
        return
    if not can_cancel(order):
        logger.info("cancel of {} refused: {}", cmd.order_id, order.status)
        return
    await _cancel(uow, envelope, order, cmd.reason)


async def step_timed_out(timeouts: StepTimeouts, envelope: Env, uow: UnitOfWork) -> None:
    """Time out the step the order waits on now, if its deadline passed; else re-arm.

    A timer says "look at this order", not which step failed: the step it was armed for may
    have answered since. The deadline is the current step's start (`updated_at`) plus its
    timeout.
    """
    timer: StepTimedOut = envelope.message
    order = await store.load(uow, timer.order_id)
    if order is None or (step := WAITING_ON.get(order.status)) is None:
        return  # unknown or finished: nothing is waiting
    left = order.updated_at + timeouts.of(step) - utcnow()
    if left > timedelta(0):
        if not timeouts.needs_own_timer(step):  # else its own timer is on the way
            _arm(uow, envelope, order, step, left)
        return
    waited = timeouts.of(step).total_seconds()
    await _cancel(uow, envelope, order, f"timeout: {step.value} got no answer within {waited:g}s")


def handlers(timeouts: StepTimeouts) -> Mapping[str, Handler]:
    """The dispatch table, with the step timeouts bound in."""
    return {
        PlaceOrder.NAME: partial(place_order, timeouts),
        CancelOrder.NAME: cancel_order,
        StepTimedOut.NAME: partial(step_timed_out, timeouts),
        StockReserved.NAME: partial(stock_reserved, timeouts),
        StockRejected.NAME: stock_rejected,
        PaymentCaptured.NAME: partial(payment_captured, timeouts),
        PaymentDeclined.NAME: payment_declined,
        PaymentRefunded.NAME: payment_refunded,
        ShipmentArranged.NAME: shipment_arranged,
    }


__all__ = ["SAGA_QUEUE", "SagaStep", "handlers"]
