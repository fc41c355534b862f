"""What a fresh interpreter loads: for the tests that keep modules out of a worker's process."""

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
