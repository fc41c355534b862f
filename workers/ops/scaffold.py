"""`warren new service NAME`: a working service in its own folders, then the derived files anew.

It writes only new files (the package, its contract module, its tests) and regenerates what
derives from the declarations; it never edits a hand-written file.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from uuid import NAMESPACE_URL, uuid5

from workers.ops.generate import ROOT

TEMPLATES = Path(__file__).with_name("templates") / "service"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,23}$")
# template -> where it goes, relative to the repository
LAYOUT = {
    "contracts.py.tmpl": "contracts/{name}.py",
    "__init__.py.tmpl": "workers/{name}/__init__.py",
    "__main__.py.tmpl": "workers/{name}/__main__.py",
    "service.py.tmpl": "workers/{name}/service.py",
    "tables.py.tmpl": "workers/{name}/tables.py",
    "handlers.py.tmpl": "workers/{name}/handlers.py",
    "bootstrap.py.tmpl": "workers/{name}/bootstrap.py",
    "test_handlers.py.tmpl": "tests/services/{name}/test_handlers.py",
    "test_wiring.py.tmpl": "tests/services/{name}/test_wiring.py",
}
EMPTY = ("tests/services/{name}/__init__.py",)


def camel(name: str) -> str:
    """`loyalty_points` -> `LoyaltyPoints`."""
    return "".join(part.capitalize() for part in name.split("_"))


def planned_files(name: str, description: str, root: Path = ROOT) -> dict[Path, str]:
    """Every file the new service needs, with its text; refuses a taken or malformed name."""
    if not NAME.fullmatch(name):
        raise ValueError(f"{name!r}: a service name is lower-case letters, digits and _")
    values = {"name": name, "Camel": camel(name), "package": f"workers.{name}"}
    values["example_id"] = str(uuid5(NAMESPACE_URL, f"warren:{name}"))
    values["description"] = description or f"the {name} service"
    files = {
        root / target.format(name=name): Template((TEMPLATES / template).read_text()).substitute(
            values
        )
        for template, target in LAYOUT.items()
    }
    files |= {root / target.format(name=name): "" for target in EMPTY}
    taken = [str(p.relative_to(root)) for p in files if p.exists()]
    if taken or (root / "workers" / name).exists():
        raise FileExistsError(f"{name!r} exists already: {', '.join(taken) or f'workers/{name}'}")
    return files


def write_service(name: str, description: str = "", root: Path = ROOT) -> list[Path]:
    """Write the new service's files; the paths written."""
    files = planned_files(name, description, root)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(files)
