"""The provider's settings: where it listens, its ledger, and how badly it behaves."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProviderSettings(BaseSettings):
    """`WARREN_PROVIDER_*`: port, ledger database and simulated misbehaviour (rates are 0..1)."""

    model_config = SettingsConfigDict(
        env_prefix="WARREN_PROVIDER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8090
    db_url: str = "sqlite+inline:///var/provider.db"
    latency_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    decline_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    error_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    lose_answer_rate: Annotated[
        float, Field(ge=0, le=1, description="Share of charges made whose answer is lost (502).")
    ] = 0.0
    seed: int | None = None
