"""Named points where a test can make this process die as if `kill -9`ed (fault injection).

Inactive unless `WARREN_CRASHPOINTS` names the point; the tests use it to prove that a crash at
the worst moment loses nothing and duplicates no effect.
"""

from __future__ import annotations

import os
import signal


def crashpoint(name: str) -> None:
    """Die with SIGKILL here if `WARREN_CRASHPOINTS` (comma-separated) names this point."""
    if name in os.environ.get("WARREN_CRASHPOINTS", "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)
