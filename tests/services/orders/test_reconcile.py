"""Orders against the card provider's ledger, as `warren verify` reconciles them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.orders import OrderStatus
from workers.orders.reconcile import reconcile


def entry(status: str, order_id: str = "o1", payment_id: str | None = "pay_1") -> dict[str, Any]:
    return {"status": status, "order_id": order_id, "payment_id": payment_id}


@dataclass
class Order:
    status: OrderStatus


@dataclass
class Payment:
    """What payments report per order (`charges`), as far as the reconciliation reads it."""

    status: str
    payment_id: str | None


def facts(ledger: list[dict[str, Any]], orders: dict[str, OrderStatus], payments: dict) -> dict:
    return {
        "provider_ledger": ledger,
        "orders": {k: Order(v) for k, v in orders.items()},
        "charges": payments,
    }


def captured(payment_id: str) -> Payment:
    return Payment("captured", payment_id)


def test_a_charge_backing_its_confirmed_order_and_a_refunded_one_are_clean() -> None:
    ledger = [entry("charged", "o1", "pay_1"), entry("refunded", "o2", "pay_2")]
    orders = {"o1": OrderStatus.CONFIRMED, "o2": OrderStatus.CANCELLED}
    payments = {"o1": captured("pay_1"), "o2": Payment("refunded", "pay_2")}
    assert reconcile(facts(ledger, orders, payments)) == []


def test_a_charge_of_a_cancelled_order_is_found() -> None:
    ledger = [entry("charged", "o1", "pay_1")]
    found = reconcile(facts(ledger, {"o1": OrderStatus.CANCELLED}, {}))
    assert [f.problem for f in found] == [
        "still charged, backs order CANCELLED",
        "not the capture payments recorded (None)",
    ]


def test_an_order_charged_twice_is_found() -> None:
    ledger = [entry("charged", "o1", "pay_1"), entry("charged", "o1", "pay_2")]
    found = reconcile(facts(ledger, {"o1": OrderStatus.CONFIRMED}, {"o1": captured("pay_1")}))
    assert [f.problem for f in found] == ["charged 2 times"]


def test_a_capture_the_provider_does_not_hold_is_found() -> None:
    found = reconcile(facts([], {"o1": OrderStatus.CONFIRMED}, {"o1": captured("pay_1")}))
    assert [str(f) for f in found] == ["payment of order o1: captured, provider holds none"]


def test_an_order_still_in_progress_is_left_to_finish() -> None:
    ledger = [entry("charged", "o1", "pay_1")]
    assert reconcile(facts(ledger, {"o1": OrderStatus.PAID}, {"o1": captured("pay_1")})) == []


def test_without_a_provider_ledger_there_is_nothing_to_reconcile() -> None:
    assert reconcile({"orders": {}, "charges": {}}) == []
