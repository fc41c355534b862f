"""Named points where a test can make this process die as if `kill -9`ed (fault injection).

Inactive unless `WARREN_CRASHPOINTS` names the point; the tests use it to prove that a crash at
the worst moment loses nothing and duplicates no effect. `NAME:freeze` stops the process there
instead (SIGSTOP, as a stalled machine would), holding whatever it holds until a SIGCONT.
"""

from __future__ import annotations

import os
import signal


def crashpoint(name: str) -> None:
    """Die with SIGKILL (or freeze, with `NAME:freeze`) where `WARREN_CRASHPOINTS` says."""
    points = os.environ.get("WARREN_CRASHPOINTS", "").split(",")
    if name in points:
        os.kill(os.getpid(), signal.SIGKILL)
    if f"{name}:freeze" in points:
        os.kill(os.getpid(), signal.SIGSTOP)
