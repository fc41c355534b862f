"""The orders service declares itself: the saga's queue, what it consumes and sends."""

from __future__ import annotations

from contracts.inventory import ReleaseStock, ReserveStock, StockRejected, StockReserved
from contracts.orders import CancelOrder, OrderStatusChanged, PlaceOrder, StepTimedOut
from contracts.payments import (
    CapturePayment,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
)
from contracts.shipping import ArrangeShipment, CancelShipment, ShipmentArranged
from workers.runtime.declaration import Service

SERVICE = Service(
    name="orders",
    group="saga",
    description="the order saga: reserves stock, takes payment, arranges shipment, compensates",
    consumes=(
        PlaceOrder,
        CancelOrder,
        StepTimedOut,
        StockReserved,
        StockRejected,
        PaymentCaptured,
        PaymentDeclined,
        PaymentRefunded,
        ShipmentArranged,
    ),
    sends=(
        ReserveStock,
        ReleaseStock,
        CapturePayment,
        RefundPayment,
        ArrangeShipment,
        CancelShipment,
        OrderStatusChanged,
    ),
    bootstrap="workers.orders.bootstrap:bootstrap",
    verify="workers.orders.checks:verify",
    settings="workers.orders.settings:OrdersSettings",
)
