"""The payments composition root: the real card provider unless a test passes a fake."""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from contracts.envelope import Envelope
from outbox.unit_of_work import UnitOfWork
from workers.payments.handlers import HANDLERS, PaymentHandler
from workers.payments.provider import CardProvider, SimulatedCardProvider
from workers.payments.service import SERVICE
from workers.payments.tables import PAYMENT_TABLES
from workers.runtime.consumer import Handler
from workers.runtime.service import ServiceSpec


def _bind(handler: PaymentHandler, provider: CardProvider) -> Handler:
    """A runtime handler that calls `handler` with this process's card provider."""

    async def handle(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await handler(envelope, uow, provider)

    return handle


def bootstrap(settings: Settings, provider: CardProvider | None = None) -> ServiceSpec:
    """The payments worker: its queue, its handlers bound to a card provider, its tables."""
    card_provider = provider if provider is not None else SimulatedCardProvider()
    handlers: dict[str, Handler] = {
        name: _bind(handler, card_provider) for name, handler in HANDLERS.items()
    }
    return ServiceSpec(
        name=SERVICE.name,
        subscription=SERVICE.subscription,
        handlers=handlers,
        tables=PAYMENT_TABLES,
    )
