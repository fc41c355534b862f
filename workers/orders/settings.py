"""The orders service's own settings: how long the saga waits on each step."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.settings import ENV_PREFIX
from workers.orders.model import StepTimeouts


class OrdersSettings(BaseSettings):
    """`WARREN_RESERVE_TIMEOUT_S`, `WARREN_PAYMENT_TIMEOUT_S`, `WARREN_SHIPMENT_TIMEOUT_S`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    reserve_timeout_s: Annotated[
        float,
        Field(gt=0, description="Seconds the saga waits for a stock reservation's answer."),
    ] = 30.0
    payment_timeout_s: Annotated[
        float, Field(gt=0, description="Seconds it waits for a capture before compensating.")
    ] = 30.0
    shipment_timeout_s: Annotated[
        float, Field(gt=0, description="Seconds it waits for a shipment before compensating.")
    ] = 60.0

    def timeouts(self) -> StepTimeouts:
        """The step timeouts of the saga."""
        return StepTimeouts(
            reserve_stock=timedelta(seconds=self.reserve_timeout_s),
            capture_payment=timedelta(seconds=self.payment_timeout_s),
            arrange_shipment=timedelta(seconds=self.shipment_timeout_s),
        )

    @property
    def longest_step(self) -> timedelta:
        """The longest any step may take before the saga gives up on it."""
        return timedelta(
            seconds=max(self.reserve_timeout_s, self.payment_timeout_s, self.shipment_timeout_s)
        )
