"""The carts composition root: its queue, handlers, tables, and its HTTP API."""

from __future__ import annotations

from config.settings import Settings
from workers.carts.api import create_api
from workers.carts.handlers import HANDLERS
from workers.carts.service import SERVICE
from workers.carts.tables import TABLES
from workers.runtime.service import ServiceSpec


def bootstrap(settings: Settings) -> ServiceSpec:
    """The carts worker: it consumes user changes and serves the carts API beside them."""
    return ServiceSpec(
        name=SERVICE.name,
        subscription=SERVICE.subscription,
        handlers=dict(HANDLERS),
        tables=TABLES,
        api=create_api(settings),
    )
