"""Synchronous calls from the gateway to a service's HTTP API: timeouts, failover, breakers.

Each instance of the service (`WARREN_<SERVICE>_API_URLS`) has its own circuit breaker. A call
tries the instances whose breaker lets it through, starting at a different one each time; a
connection failure, a timeout or a 5xx moves on to the next. Only idempotent requests are
retried (every call the gateway makes is, by design: the caller names what it creates). When
no instance answers, the client gets `503` problem+json with `Retry-After`, never a hang.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import httpx
from loguru import logger

from config.settings import Settings
from gateway.problems import ProblemError
from workers.runtime.breaker import CircuitBreaker


@dataclass
class ServiceCalls:
    """Calls one service's API on any of its instances."""

    def __init__(
        self,
        service: str,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service = service
        self.urls = list(settings.api_urls.get(service, []))
        self._breakers = {
            url: CircuitBreaker(
                failures=settings.api_breaker_threshold, reset_s=settings.api_breaker_reset_s
            )
            for url in self.urls
        }
        self._next = itertools.count()
        self._client = httpx.AsyncClient(timeout=settings.api_timeout_s, transport=transport)

    async def close(self) -> None:
        await self._client.aclose()

    def _unavailable(self, why: str) -> ProblemError:
        waits = [b.retry_after() for b in self._breakers.values()]
        retry = max(1, math.ceil(min((w for w in waits if w > 0), default=1.0)))
        return ProblemError(
            503,
            "Service unavailable",
            f"The {self.service} service {why}; try again shortly.",
            {"Retry-After": str(retry)},
        )

    async def request(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """The first answer below 500 from an instance; 503 problem when none gives one."""
        if not self.urls:
            raise self._unavailable("is not configured")
        start = next(self._next) % len(self.urls)
        tried = 0
        for url in self.urls[start:] + self.urls[:start]:
            breaker = self._breakers[url]
            if not breaker.allow():
                continue
            tried += 1
            try:
                answer = await self._client.request(method, url + path, json=json)
            except httpx.HTTPError as exc:
                logger.warning("{} at {}: {}", self.service, url, type(exc).__name__)
                breaker.failed()
                continue
            except BaseException:  # cancelled: no verdict on the instance
                breaker.released()
                raise
            if answer.status_code >= 500:
                logger.warning("{} at {} answered {}", self.service, url, answer.status_code)
                breaker.failed()
                continue
            breaker.succeeded()
            return answer
        raise self._unavailable("did not answer" if tried else "is failing (circuit open)")
