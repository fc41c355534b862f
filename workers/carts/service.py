"""The service declares itself here: its queue, what it consumes and sends (docs/services.md)."""

from __future__ import annotations

from contracts.accounts import UserStatusChanged
from contracts.orders import PlaceOrder
from workers.runtime.declaration import Service

SERVICE = Service(
    name="carts",
    group="carts",
    description="keeps users' carts over HTTP; a checkout places the order, once",
    consumes=(UserStatusChanged,),
    sends=(PlaceOrder,),
    bootstrap="workers.carts.bootstrap:bootstrap",
    verify="workers.carts.checks:verify",
    http=True,
)
