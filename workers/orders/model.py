"""The saga's rules, free of I/O: which step each status waits on, and how to undo it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from contracts.base import Command
from contracts.inventory import ReleaseStock
from contracts.orders import OrderStatus, SagaStep
from contracts.payments import RefundPayment
from contracts.shipping import CancelShipment
from workers.orders.tables import CustomerOrder

WAITING_ON = {
    OrderStatus.PENDING: SagaStep.RESERVE_STOCK,
    OrderStatus.STOCK_RESERVED: SagaStep.CAPTURE_PAYMENT,
    OrderStatus.PAID: SagaStep.ARRANGE_SHIPMENT,
}


STEPS = tuple(WAITING_ON.values())  # in the order the saga takes them


@dataclass(frozen=True, slots=True)
class StepTimeouts:
    """How long the saga waits for each step before it compensates."""

    reserve_stock: timedelta
    capture_payment: timedelta
    arrange_shipment: timedelta

    def of(self, step: SagaStep) -> timedelta:
        """The timeout of one step."""
        return getattr(self, step.value)

    def needs_own_timer(self, step: SagaStep) -> bool:
        """Whether `step` arms a timer of its own when it starts.

        The first step always does. A later step started after every earlier one, so if its
        timeout is at least as long as theirs, the timer armed for an earlier step fires no
        later than this step's deadline, and then re-arms itself for what is left of it: one
        timer per order covers the whole saga (with the defaults, 30, 30 and 60 s). A step with
        a shorter timeout than an earlier one arms its own, so that no deadline is missed.
        """
        earlier = STEPS[: STEPS.index(step)]
        return not earlier or self.of(step) < max(self.of(s) for s in earlier)


def is_waiting_for(order: CustomerOrder, status: OrderStatus) -> bool:
    """Whether a reply for the step of `status` may still move this order."""
    return order.status == status


def can_cancel(order: CustomerOrder) -> bool:
    """Cancellation is accepted until the shipment is arranged."""
    return order.status in WAITING_ON


def compensation(order: CustomerOrder, reason: str) -> list[Command]:
    """The commands that undo every step this order has started, in any order, idempotently."""
    order_id = UUID(order.order_id)
    undo: list[Command] = [ReleaseStock(order_id=order_id)]
    if order.status in {OrderStatus.STOCK_RESERVED, OrderStatus.PAID}:
        undo.append(RefundPayment(order_id=order_id, reason=reason))
    if order.status == OrderStatus.PAID:
        undo.append(CancelShipment(order_id=order_id))
    return undo


def total_cents(lines: list[dict[str, int]]) -> int:
    """The order total from priced lines."""
    return sum(line["quantity"] * line["unit_price_cents"] for line in lines)
