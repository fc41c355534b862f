"""No service's name is typed by hand outside its own folders and the generated files.

A service's own places: its package, its tests (`tests/services/<name>/`) and the contract
modules of the contexts it owns. Generated files and regions are derived from the declarations.
Everything else is checked: code, deployment and build files, and the rest of the suite, which
finds a service by the contract it consumes or uses a fictional name (docs/decisions.md).
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from workers.ops import generate
from workers.runtime.declaration import Service
from workers.runtime.discovery import workers

ROOT = generate.ROOT
DEPLOYMENT_SUFFIXES = {".yaml", ".yml", ".sh", ".json", ".toml", ".cfg", ".ini", ".env"}
GENERATED_DIRS = ("contracts/schemas/",)
# a region's markers start their lines, as `workers/ops/generate.py` writes them
_REGION = re.compile(
    r"^[ \t]*# >>> generated: (?P<name>[\w-]+).*?^[ \t]*# <<< generated: (?P=name)[^\n]*$",
    re.MULTILINE | re.DOTALL,
)


def tracked_files() -> list[str]:
    """The files git tracks, and the ones it does not ignore (a new service before its commit)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(set(listed))


def own_places(service: Service) -> tuple[str, ...]:
    """Where a service's name may be typed: its package, its tests, its contract modules."""
    package = service.package.replace(".", "/") + "/"
    contexts = {*service.owned_contexts, *(m.NAME.partition(".")[0] for m in service.consumes)}
    own_contexts = {c for c in contexts if c == service.name}
    return (
        package,
        f"tests/services/{service.name}/",
        *(f"contracts/{c}.py" for c in own_contexts),
    )


def python_literals(text: str) -> list[tuple[int, str]]:
    """Every string constant of a Python source, with its line."""
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def typed_names(path: str, text: str, service: Service) -> list[str]:
    """Where `service`'s name or queue is typed in one file: `path:line`."""
    if path.endswith(".py"):
        text = _REGION.sub(lambda m: "\n" * m[0].count("\n"), text)
        return [
            f"{path}:{line}"
            for line, value in python_literals(text)
            if value in {service.name, service.queue}
        ]
    if Path(path).suffix in DEPLOYMENT_SUFFIXES or Path(path).name in {"Makefile", "run"}:
        text = _REGION.sub("", text)
        word = re.compile(rf"(?<![\w.-]){re.escape(service.name)}(?![\w-])")
        return [f"{path}:{i}" for i, line in enumerate(text.splitlines(), 1) if word.search(line)]
    return []


@pytest.mark.parametrize("service", workers(), ids=lambda s: s.name)
def test_a_service_name_is_typed_only_in_its_own_folders(service: Service) -> None:
    generated = {str(p) for p in generate.WHOLE_FILES}
    found = []
    for path in tracked_files():
        if path.startswith((*own_places(service), *GENERATED_DIRS)) or path in generated:
            continue
        if not (ROOT / path).is_file():
            continue
        found += typed_names(path, (ROOT / path).read_text(errors="replace"), service)
    assert found == [], f"{service.name} is typed by hand in: {', '.join(found)}"


def test_the_check_finds_a_name_typed_by_hand() -> None:
    # the check itself can fail: a literal, a queue, a deployment line outside a region
    service = next(iter(workers()))
    assert typed_names("x.py", f"NAME = {service.name!r}\n", service) == ["x.py:1"]
    assert typed_names("x.py", f"Q = {service.queue!r}\n", service) == ["x.py:1"]
    yaml = f"a: [{service.name}]\n# >>> generated: r\n{service.name}\n# <<< generated: r\n"
    assert typed_names("x.yaml", yaml, service) == ["x.yaml:1"]
