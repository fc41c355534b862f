"""Payments' part of `warren verify`: what each order was charged, and the provider's ledger."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from workers.payments.queries import payments_by_order
from workers.payments.settings import PaymentsSettings
from workers.runtime.checks import Verification


async def provider_ledger(url: str) -> list[dict[str, Any]]:
    """Every entry of the provider's ledger."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.get("/charges")
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return entries


async def collect(session: AsyncSession) -> dict[str, Any]:
    """`charges` by order id and, with a provider service configured, `provider_ledger`."""
    facts: dict[str, Any] = {
        "charges": {str(k): v for k, v in (await payments_by_order(session)).items()}
    }
    url = PaymentsSettings().payment_provider_url
    if url is not None:
        facts["provider_ledger"] = await provider_ledger(url)
    return facts


verify = Verification(collect)
