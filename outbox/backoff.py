"""How long to wait before trying again: one pure, tested function for every retry loop.

The runtime's delayed retries, the relay's failed publishes and the gateway's reconnects all use
it (see docs/decisions.md, "One backoff"); it lives in `outbox` so that the relay, which must not
import `workers.runtime`, can share it.
"""

from __future__ import annotations

import random


def retry_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> float:
    """Seconds before retry `attempt` (1-based): exponential, capped, with equal jitter.

    The delay lies in `[d * (1 - jitter), d]` with `d = min(cap, base * 2**(attempt-1))`; with
    `jitter <= 0.5`, below the cap each attempt waits at least as long as the one before, and
    no two callers that fail together retry in lockstep.
    """
    if attempt < 1:
        raise ValueError("attempts are counted from 1")
    ceiling = min(cap_s, base_s * 2 ** min(attempt - 1, 62))
    return ceiling * (1 - jitter) + (rng or random).uniform(0, ceiling * jitter)
