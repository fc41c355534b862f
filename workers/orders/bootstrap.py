"""The composition root of the orders service."""

from __future__ import annotations

from config.settings import Settings
from workers.orders.handlers import handlers
from workers.orders.service import SERVICE
from workers.orders.settings import OrdersSettings
from workers.orders.tables import TABLES
from workers.runtime.service import ServiceSpec


def bootstrap(settings: Settings, own: OrdersSettings | None = None) -> ServiceSpec:
    """The orders worker: the saga's handlers, its tables and its queue."""
    own = own or OrdersSettings()
    return ServiceSpec(
        name=SERVICE.name,
        subscription=SERVICE.subscription,
        handlers=handlers(own.timeouts()),
        tables=TABLES,
    )
