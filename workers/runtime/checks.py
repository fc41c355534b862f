"""What a service contributes to `warren verify`: facts from its database, and checks on them.

Every service reads only its own database and reports named facts (`stock_held`, `charges`, ...);
a check may read any service's facts by name, never another service's tables.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings

Facts = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Finding:
    """One disagreement between what the services recorded."""

    subject: str
    problem: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Verification:
    """A service's part of `warren verify`: `collect` its facts, then `check` all of them."""

    collect: Callable[[AsyncSession], Awaitable[dict[str, Any]]]
    check: Callable[[Facts, Settings, timedelta | None], list[Finding]] | None = None
