"""The payments service's own settings: which card provider to call, and how patiently."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.settings import ENV_PREFIX


class PaymentsSettings(BaseSettings):
    """`WARREN_PAYMENT_PROVIDER_URL` and the timeout and circuit breaker of the calls to it."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    payment_provider_url: Annotated[
        str | None,
        Field(description="The card provider's base URL; unset: an in-process simulation."),
    ] = None
    payment_provider_timeout_s: Annotated[
        float, Field(gt=0, le=60, description="Seconds a call to the provider may take.")
    ] = 5.0
    payment_breaker_failures: Annotated[
        int, Field(ge=1, le=100, description="Failed calls in a row that open the breaker.")
    ] = 5
    payment_breaker_reset_s: Annotated[
        float, Field(gt=0, le=600, description="Seconds the breaker stays open before a trial.")
    ] = 5.0
