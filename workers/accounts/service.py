"""The service declares itself here: its queue, what it consumes and sends (docs/services.md)."""

from __future__ import annotations

from contracts.accounts import (
    ApiKeyRevoked,
    DeactivateUser,
    IssueApiKey,
    RegisterUser,
    RevokeApiKey,
    UserStatusChanged,
)
from workers.runtime.declaration import Service

SERVICE = Service(
    name="accounts",
    group="users",
    description="registers users, keeps their API keys (hashes only), deactivates them",
    consumes=(RegisterUser, IssueApiKey, RevokeApiKey, DeactivateUser),
    sends=(UserStatusChanged, ApiKeyRevoked),
    bootstrap="workers.accounts.bootstrap:bootstrap",
    verify="workers.accounts.checks:verify",
)
