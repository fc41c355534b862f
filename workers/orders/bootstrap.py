"""The composition root of the orders service."""

from __future__ import annotations

from datetime import timedelta

from config.settings import Settings
from contracts.topology import subscription
from workers.orders.handlers import handlers
from workers.orders.model import StepTimeouts
from workers.orders.tables import TABLES
from workers.runtime.service import ServiceSpec


def timeouts(settings: Settings) -> StepTimeouts:
    """The step timeouts configured for this process."""
    return StepTimeouts(
        reserve_stock=timedelta(seconds=settings.reserve_timeout_s),
        capture_payment=timedelta(seconds=settings.payment_timeout_s),
        arrange_shipment=timedelta(seconds=settings.shipment_timeout_s),
    )


def bootstrap(settings: Settings) -> ServiceSpec:
    """The orders worker: the saga's handlers, its tables and its queue."""
    return ServiceSpec(
        name="orders",
        subscription=subscription("orders"),
        handlers=handlers(timeouts(settings)),
        tables=TABLES,
    )
