"""The gateway's part of `warren verify`: the users' keys it would accept (`api_keys_accepted`).

The accounts service checks them against who it deactivated and what it revoked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.accounts import UserStatus
from gateway.tables import API_KEYS, USERS
from outbox.db import rows
from workers.runtime.checks import Verification

_ACCEPTED = (
    select(API_KEYS.c.key_id, API_KEYS.c.user_id)
    .join(USERS, USERS.c.user_id == API_KEYS.c.user_id)
    .where(API_KEYS.c.revoked == false(), USERS.c.status == UserStatus.ACTIVE.value)
)


async def collect(session: AsyncSession) -> dict[str, Any]:
    """`api_keys_accepted`: user id by key id, for every key the gateway accepts now."""
    return {"api_keys_accepted": {k: u for k, u in (await rows(session, _ACCEPTED)).all()}}


verify = Verification(collect)
