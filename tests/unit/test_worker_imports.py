"""Modules a worker never uses stay out of its process (docs/performance.md, "Worker memory")."""

from __future__ import annotations

from tests.support.imports import run_probe


def test_the_lean_httpx_leaves_out_its_command_line_client_only() -> None:
    probe = (
        "import json, sys\n"
        "from workers.runtime.httpclient import httpx\n"
        "cli = [m for m in sys.modules if m.startswith(('rich', 'pygments', 'httpx._main'))]\n"
        "import httpx._main\n"
        "print(json.dumps([cli, httpx.AsyncClient.__name__, httpx._main.main.name]))\n"
    )
    assert run_probe(probe) == [[], "AsyncClient", "main"]
