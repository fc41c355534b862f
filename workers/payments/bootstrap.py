"""The payments composition root: the HTTP card provider when configured, else a simulation."""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from contracts.envelope import Envelope
from outbox.unit_of_work import UnitOfWork
from workers.payments.handlers import HANDLERS, PaymentHandler
from workers.payments.http_provider import HttpCardProvider
from workers.payments.provider import CardProvider, SimulatedCardProvider
from workers.payments.service import SERVICE
from workers.payments.settings import PaymentsSettings
from workers.payments.tables import PAYMENT_TABLES
from workers.runtime.breaker import CircuitBreaker
from workers.runtime.consumer import Handler
from workers.runtime.service import ServiceSpec


def _bind(handler: PaymentHandler, provider: CardProvider) -> Handler:
    """A runtime handler that calls `handler` with this process's card provider."""

    async def handle(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await handler(envelope, uow, provider)

    return handle


def card_provider(settings: PaymentsSettings) -> CardProvider:
    """The provider service at the configured URL, or the in-process simulation."""
    if settings.payment_provider_url is None:
        return SimulatedCardProvider()
    breaker = CircuitBreaker(
        failures=settings.payment_breaker_failures, reset_s=settings.payment_breaker_reset_s
    )
    return HttpCardProvider(
        settings.payment_provider_url,
        timeout_s=settings.payment_provider_timeout_s,
        breaker=breaker,
    )


def bootstrap(settings: Settings, provider: CardProvider | None = None) -> ServiceSpec:
    """The payments worker: its queue, its handlers bound to a card provider, its tables."""
    chosen = provider if provider is not None else card_provider(PaymentsSettings())
    handlers: dict[str, Handler] = {
        name: _bind(handler, chosen) for name, handler in HANDLERS.items()
    }
    return ServiceSpec(
        name=SERVICE.name,
        subscription=SERVICE.subscription,
        handlers=handlers,
        tables=PAYMENT_TABLES,
    )
