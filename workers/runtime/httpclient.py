"""httpx without the command line client that `import httpx` loads with it.

httpx's `__init__` imports `httpx._main`, its `httpx` command, and with it rich, pygments and
click: about 3 MiB in every process that imports httpx, where no worker runs that command
(docs/performance.md, "Worker memory"). Imported first through here, httpx finds that module
missing and defines the stand-in it has for an install without its `cli` extra; the client is
the same. `httpx._main` stays importable afterwards for whoever wants it.
"""

from __future__ import annotations

import sys

if "httpx" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]  # "not installed" to importers
    try:
        import httpx
    finally:
        if "httpx._main" in sys.modules and sys.modules["httpx._main"] is None:
            del sys.modules["httpx._main"]

import httpx

__all__ = ["httpx"]
