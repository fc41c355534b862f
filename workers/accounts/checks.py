"""Accounts' part of `warren verify`: who is deactivated and which keys are revoked.

The check compares them with the keys the gateway would accept (`api_keys_accepted`, a fact the
gateway reports): a key of a deactivated user, or a revoked key, must never be accepted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from contracts.accounts import UserStatus
from workers.accounts.handlers import REVOKED
from workers.accounts.tables import Account, AccountKey
from workers.runtime.checks import Facts, Finding, Verification


async def collect(session: AsyncSession) -> dict[str, Any]:
    """`deactivated_users` and `revoked_keys`: ids, as text."""
    users = select(Account.user_id).where(col(Account.status) == UserStatus.DEACTIVATED)
    keys = select(AccountKey.key_id).where(col(AccountKey.status) == REVOKED)
    return {
        "deactivated_users": {str(u) for u in (await session.exec(users)).all()},
        "revoked_keys": {str(k) for k in (await session.exec(keys)).all()},
    }


def check(facts: Facts, _settings: Settings, _stuck_after: timedelta | None) -> list[Finding]:
    """No key the gateway accepts belongs to a deactivated user or was revoked."""
    accepted: dict[str, str] = facts.get("api_keys_accepted", {})
    found = []
    for key_id, user_id in sorted(accepted.items()):
        if user_id in facts["deactivated_users"]:
            found.append(
                Finding(f"API key {key_id}", f"accepted, but user {user_id} is deactivated")
            )
        if key_id in facts["revoked_keys"]:
            found.append(Finding(f"API key {key_id}", "accepted, but it was revoked"))
    return found


verify = Verification(collect, check)
