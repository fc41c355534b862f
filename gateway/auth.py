"""API keys and a token bucket per client.

Operators' keys come from the settings (`client:<sha256>`); users' keys from the gateway's view
of the accounts service (hashes only). A user's key is accepted while it is not revoked and its
user is ACTIVE; an accepted key is remembered for `CACHE_S`, which bounds how long a revocation
takes to reach every gateway instance.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy import bindparam, false, select

from config.settings import Settings, hash_api_key
from contracts.accounts import UserStatus
from gateway.accounts import KEY_PREFIX, user_client
from gateway.problems import ProblemError
from gateway.tables import API_KEYS, USERS
from outbox.db import SessionFactory, rows

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="warren"'}
CACHE_S = 1.0
CACHE_LIMIT = 10_000

_ACCEPTED = (
    select(API_KEYS.c.user_id)
    .join(USERS, USERS.c.user_id == API_KEYS.c.user_id)
    .where(
        API_KEYS.c.key_hash == bindparam("digest"),
        API_KEYS.c.revoked == false(),
        USERS.c.status == UserStatus.ACTIVE.value,
    )
)


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
        self._users: SessionFactory | None = None
        self._accepted: dict[str, tuple[str, float]] = {}

    def read_users_from(self, reads: SessionFactory) -> None:
        """Accept users' keys too, as the gateway's view of them says."""
        self._users = reads

    async def client(self, request: Request) -> str:
        """The client name for the request's key, or a 401 problem."""
        return await self.client_of(
            request.headers.get("x-api-key"), request.headers.get("authorization")
        )

    async def client_of(self, x_api_key: str | None, authorization: str | None) -> str:
        """The client name for the key in these headers' values, or a 401 problem."""
        key = x_api_key
        scheme, _, token = (authorization or "").partition(" ")
        if key is None and scheme.lower() == "bearer":
            key = token.strip()
        if not key:
            raise ProblemError(
                401,
                "Authentication required",
                "Send `Authorization: Bearer <key>` or `X-API-Key`.",
                UNAUTHORIZED,
            )
        digest = hash_api_key(key)
        client = self._clients.get(digest)
        if client is None and key.startswith(KEY_PREFIX):
            client = await self._user_client(digest)
        if client is None:
            raise ProblemError(401, "Unknown API key", "The API key is not valid.", UNAUTHORIZED)
        return client

    async def _user_client(self, digest: str) -> str | None:
        now = time.monotonic()
        cached = self._accepted.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        if self._users is None:
            return None
        async with self._users() as session:
            user_id = (await rows(session, _ACCEPTED, {"digest": digest})).scalar()
        if user_id is None:
            self._accepted.pop(digest, None)
            return None
        if len(self._accepted) >= CACHE_LIMIT:
            self._accepted = {k: v for k, v in self._accepted.items() if v[1] > now}
        client = user_client(user_id)
        self._accepted[digest] = (client, now + CACHE_S)
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
