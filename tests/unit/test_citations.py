"""Code and docs cite documents inside the repository, never a design page kept elsewhere."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sh"}
# Built from parts, so that this file does not cite what it forbids.
OUTSIDE_DESIGN = re.compile(r"\bDESIGN\s*\u00a7|\bDESIGN\.md\b")
ARCHITECTURE_SECTION = re.compile(r'docs/architecture\.md`?, "([^"]+)"')


def _is_shell_script(path: Path) -> bool:
    """An extensionless script such as `.ci/run`."""
    with path.open("rb") as file:
        first = file.readline(200)
    return first.startswith(b"#!") and first.rstrip().endswith((b"sh", b"bash"))


def _checked_files() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        # Tools, caches, virtual environments and data are not ours; `.ci` is.
        dirs[:] = [d for d in dirs if d == ".ci" or (not d.startswith((".", "__")) and d != "var")]
        for name in files:
            path = Path(folder, name)
            if path.suffix in SUFFIXES or (not path.suffix and _is_shell_script(path)):
                yield path


def citations(text: str) -> list[str]:
    """The lines of `text` that cite the design page kept outside the repository."""
    return [line.strip() for line in text.splitlines() if OUTSIDE_DESIGN.search(line)]


def test_the_check_recognises_a_citation_of_the_outside_design_page() -> None:
    section, page = "DESIGN \u00a7", "DESIGN" + ".md"

    assert citations(f'"""The relay ({section}6)."""\nok line') == [
        f'"""The relay ({section}6)."""'
    ]
    assert citations(f"# see {page}") == [f"# see {page}"]
    assert citations('(docs/architecture.md, "Outbox and inbox")') == []


def test_no_file_cites_the_design_page_kept_outside_the_repository() -> None:
    checked = list(_checked_files())
    found = {
        str(path.relative_to(ROOT)): lines
        for path in checked
        if (lines := citations(path.read_text(encoding="utf-8", errors="replace")))
    }

    assert ROOT / ".ci" / "run" in checked and ROOT / "docs" / "architecture.md" in checked
    assert found == {}, "cite docs/architecture.md (or docs/decisions.md) instead"


def test_every_cited_section_of_the_architecture_exists() -> None:
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    headings = {line[3:].strip() for line in architecture.splitlines() if line.startswith("## ")}
    cited = {
        section
        for path in _checked_files()
        for section in ARCHITECTURE_SECTION.findall(
            path.read_text(encoding="utf-8", errors="replace")
        )
    }

    assert "Handling a message" in cited
    assert cited - headings == set()
