"""`warren up` colours each service's log prefix from its name, whatever the name."""

from __future__ import annotations

import os
import subprocess
import sys

from workers.ops.up_session import PALETTE, style_for
from workers.runtime.discovery import services


def test_every_service_and_any_new_one_gets_a_colour_from_the_palette() -> None:
    declared = [s.name for s in services()]
    names = [*declared, "loyalty", "a-service-nobody-planned-for", ""]

    assert all(style_for(name) in PALETTE for name in names)
    assert len({style_for(name) for name in declared}) > 1


def test_a_service_keeps_its_colour_in_every_process() -> None:
    # given two processes whose string hashes differ (Python salts them per process)
    script = "from workers.ops.up_session import style_for; print(style_for('loyalty'))"

    # when each picks the colour of "loyalty"
    colours = {
        subprocess.run(
            [sys.executable, "-c", script],
            env=os.environ | {"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }

    # then both pick the one this process picks
    assert colours == {style_for("loyalty")}
