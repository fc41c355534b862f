"""API keys (stored as SHA-256 hashes with a client name) and a token bucket per key."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from fastapi import Request

from config.settings import Settings, hash_api_key
from gateway.problems import ProblemError

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="warren"'}


class ApiKeys:
    """Which client an API key belongs to; keys are compared by their hash, never stored."""

    def __init__(self, settings: Settings) -> None:
        self._clients = {}
        for entry in settings.api_keys:
            name, sep, digest = entry.partition(":")
            if not sep or len(digest) != 64:
                raise ValueError(f"WARREN_API_KEYS entry {name!r} is not 'client:<sha256 hex>'")
            self._clients[digest.lower()] = name
        if not self._clients:
            raise ValueError("WARREN_API_KEYS is empty: no client could ever authenticate")

    def client(self, request: Request) -> str:
        """The client name for the request's key, or a 401 problem."""
        key = request.headers.get("x-api-key")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if key is None and scheme.lower() == "bearer":
            key = token.strip()
        if not key:
            raise ProblemError(
                401,
                "Authentication required",
                "Send `Authorization: Bearer <key>` or `X-API-Key`.",
                UNAUTHORIZED,
            )
        client = self._clients.get(hash_api_key(key))
        if client is None:
            raise ProblemError(401, "Unknown API key", "The API key is not valid.", UNAUTHORIZED)
        return client


@dataclass
class _Bucket:
    tokens: float
    updated: float = field(default_factory=time.monotonic)


class RateLimiter:
    """A token bucket per client: `rate` tokens a second, up to `burst` saved."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> None:
        """Spend a token, or raise a 429 problem saying when to come back."""
        now = time.monotonic()
        bucket = self._buckets.setdefault(client, _Bucket(float(self.burst), now))
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return
        wait = math.ceil((1 - bucket.tokens) / self.rate)
        raise ProblemError(
            429,
            "Too many requests",
            f"Rate limit of {self.rate:g}/s exceeded.",
            {"Retry-After": str(wait)},
        )
