"""A test that means a role (the saga, the stock keeper) finds its service by what it consumes."""

from __future__ import annotations

from contracts.base import Message
from workers.runtime.declaration import Service
from workers.runtime.discovery import services


def consumer_of(contract: type[Message]) -> Service:
    """The one service whose work queue takes `contract`."""
    found = [s for s in services() if contract in s.consumes]
    if len(found) != 1:
        named = ", ".join(s.name for s in found) or "none"
        raise LookupError(f"{contract.NAME} should have one consumer, has: {named}")
    return found[0]


def order_workers() -> tuple[str, ...]:
    """The workers an order passes through: those consuming a contract about an order."""
    return tuple(
        s.name
        for s in services()
        if s.kind == "worker" and any("order_id" in m.model_fields for m in s.consumes)
    )


def api_services() -> tuple[str, ...]:
    """The workers that serve an HTTP API the gateway calls."""
    return tuple(s.name for s in services() if s.kind == "worker" and s.http)
