"""The shipping composition root."""

from __future__ import annotations

from config.settings import Settings
from workers.runtime.service import ServiceSpec
from workers.shipping.handlers import HANDLERS
from workers.shipping.service import SERVICE
from workers.shipping.tables import SHIPPING_TABLES


def bootstrap(settings: Settings) -> ServiceSpec:
    """The shipping worker: its queue, its handlers, its tables."""
    return ServiceSpec(
        name=SERVICE.name,
        subscription=SERVICE.subscription,
        handlers=dict(HANDLERS),
        tables=SHIPPING_TABLES,
    )
