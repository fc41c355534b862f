"""The gateway declares itself like any service: its status queue and the commands it sends."""

from __future__ import annotations

from contracts.accounts import (
    ApiKeyRevoked,
    DeactivateUser,
    IssueApiKey,
    RegisterUser,
    RevokeApiKey,
    UserStatusChanged,
)
from contracts.orders import CancelOrder, OrderStatusChanged, PlaceOrder
from workers.runtime.declaration import Service

SERVICE = Service(
    name="gateway",
    group="status",
    kind="gateway",
    description="the HTTP gateway: accepts orders and user changes into its outbox, projects them",
    consumes=(OrderStatusChanged, UserStatusChanged, ApiKeyRevoked),
    sends=(PlaceOrder, CancelOrder, RegisterUser, IssueApiKey, RevokeApiKey, DeactivateUser),
    verify="gateway.checks:verify",
)
