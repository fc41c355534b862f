"""The inventory service declares itself: its stock queue, what it consumes and sends."""

from __future__ import annotations

from contracts.inventory import ReleaseStock, ReserveStock, StockRejected, StockReserved
from workers.runtime.declaration import Service

SERVICE = Service(
    name="inventory",
    group="stock",
    description="reserves and releases stock, seeded from the catalog",
    consumes=(ReserveStock, ReleaseStock),
    sends=(StockReserved, StockRejected),
    bootstrap="workers.inventory.bootstrap:bootstrap",
    verify="workers.inventory.checks:verify",
)
