"""Orders against the card provider's ledger: every charge backs one confirmed order, or none."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from contracts.orders import OrderStatus
from workers.runtime.checks import Facts, Finding


def _charges_by_order(ledger: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    charged: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in ledger:
        if entry["status"] == "charged":
            charged[entry["order_id"]].append(entry)
    return charged


def reconcile(facts: Facts) -> list[Finding]:
    """Findings on money the provider holds: not backed by a confirmed order, or taken twice."""
    ledger: list[dict[str, Any]] | None = facts.get("provider_ledger")
    if ledger is None:
        return []  # the in-process simulation keeps no ledger to compare with
    orders = {str(k): v for k, v in facts.get("orders", {}).items()}
    payments = {str(k): v for k, v in facts.get("charges", {}).items()}
    found = []
    held = _charges_by_order(ledger)
    for order_id, charges in sorted(held.items()):
        subject = f"provider charge of order {order_id}"
        order = orders.get(order_id)
        payment = payments.get(order_id)
        if order is not None and not order.status.is_terminal:
            continue  # in progress: the saga has yet to confirm or compensate
        if len(charges) > 1:
            found.append(Finding(subject, f"charged {len(charges)} times"))
        if order is None or order.status != OrderStatus.CONFIRMED:
            status = "no order" if order is None else f"order {order.status}"
            found.append(Finding(subject, f"still charged, backs {status}"))
        recorded = payment.payment_id if payment and payment.status == "captured" else None
        if recorded not in {c["payment_id"] for c in charges}:
            found.append(Finding(subject, f"not the capture payments recorded ({recorded})"))
    for order_id, payment in sorted(payments.items()):
        if payment.status == "captured" and order_id not in held:
            found.append(Finding(f"payment of order {order_id}", "captured, provider holds none"))
    return found
