"""Modules a worker never uses stay out of its process (docs/performance.md, "Worker memory")."""

from __future__ import annotations

import json
import subprocess
import sys


def run_probe(code: str) -> object:
    """What a fresh interpreter running `code` prints, as JSON."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def loaded_after(module: str, *prefixes: str) -> object:
    """The modules starting with one of `prefixes` that importing `module` loads."""
    return run_probe(
        f"import json, sys, {module}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))\n"
    )


def test_the_lean_httpx_leaves_out_its_command_line_client_only() -> None:
    probe = (
        "import json, sys\n"
        "from workers.runtime.httpclient import httpx\n"
        "cli = [m for m in sys.modules if m.startswith(('rich', 'pygments', 'httpx._main'))]\n"
        "import httpx._main\n"
        "print(json.dumps([cli, httpx.AsyncClient.__name__, httpx._main.main.name]))\n"
    )
    assert run_probe(probe) == [[], "AsyncClient", "main"]
