"""Files derived from the service declarations are committed current, and derive from them alone."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from workers.ops import generate
from workers.runtime.discovery import services, workers


def test_every_generated_file_is_current() -> None:
    # given the committed tree, when the derived files are rendered from the declarations
    stale = [str(p.relative_to(generate.ROOT)) for p in generate.stale()]

    # then nothing differs: `warren generate` was run and its result committed
    assert stale == [], "run `warren generate` and commit the result"


def test_generation_is_idempotent(tmp_path: Path) -> None:
    for path in (*generate.WHOLE_FILES, *generate.REGION_FILES):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(generate.ROOT / path, tmp_path / path)
    generate.write(tmp_path)

    assert generate.stale(tmp_path) == []


def test_every_region_names_every_worker_once() -> None:
    compose = (generate.ROOT / "compose/compose.yaml").read_text()
    for worker in workers():
        assert len(re.findall(rf'command: \["worker", "{worker.name}"\]', compose)) == 1
    users = (generate.ROOT / "config/rabbitmq/definitions.json").read_text()
    for declared in services():
        assert f'"name": "{declared.name}"' in users
