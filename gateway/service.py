"""The gateway declares itself like any service: its status queue and the commands it sends."""

from __future__ import annotations

from contracts.orders import CancelOrder, OrderStatusChanged, PlaceOrder
from workers.runtime.declaration import Service

SERVICE = Service(
    name="gateway",
    group="status",
    kind="gateway",
    description="the HTTP gateway: accepts orders into its outbox, projects their status",
    consumes=(OrderStatusChanged,),
    sends=(PlaceOrder, CancelOrder),
)
