"""Each service's own tests need no broker and no database server, and see no `WARREN_*`."""

from __future__ import annotations

from tests.support.environment import _no_warren_environment  # noqa: F401 (autouse)
