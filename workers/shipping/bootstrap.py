"""The shipping composition root."""

from __future__ import annotations

from config.settings import Settings
from contracts.topology import subscription
from workers.runtime.service import ServiceSpec
from workers.shipping.handlers import HANDLERS
from workers.shipping.tables import SHIPPING_TABLES

SERVICE = "shipping"


def bootstrap(settings: Settings) -> ServiceSpec:
    """The shipping worker: its queue, its handlers, its tables."""
    return ServiceSpec(
        name=SERVICE,
        subscription=subscription(SERVICE),
        handlers=dict(HANDLERS),
        tables=SHIPPING_TABLES,
    )
