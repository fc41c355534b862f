"""The accounts composition root."""

from __future__ import annotations

from config.settings import Settings
from workers.accounts.handlers import HANDLERS
from workers.accounts.service import SERVICE
from workers.accounts.tables import TABLES
from workers.runtime.service import ServiceSpec


def bootstrap(settings: Settings) -> ServiceSpec:
    """The accounts worker: its queue, its handlers, its tables."""
    return ServiceSpec(
        name=SERVICE.name,
        subscription=SERVICE.subscription,
        handlers=dict(HANDLERS),
        tables=TABLES,
    )
