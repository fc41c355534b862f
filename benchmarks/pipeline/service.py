"""The pipeline's four services declare themselves: one step each, in a process of its own.

They are not under `workers/`, so service discovery (and with it `warren up`, `warren generate`,
`warren verify` and the product's topology) never sees them; `python -m benchmarks.pipeline
STEP` runs one (see `__main__.py`).
"""

from __future__ import annotations

from benchmarks.pipeline.contracts import FOLLOWS, STEPS
from workers.runtime.declaration import Service

SERVICES = tuple(
    Service(
        name=f"pipeline_step{number}",
        group="hop",
        description=f"records step {number} of a pipeline and sends the next message on",
        consumes=(step,),
        sends=(FOLLOWS[step],),
        package="benchmarks.pipeline",
    )
    for number, step in enumerate(STEPS, start=1)
)


def step_service(name: str) -> Service:
    """The declaration of one step; a clear error names the steps."""
    for declared in SERVICES:
        if declared.name == name:
            return declared
    known = ", ".join(s.name for s in SERVICES)
    raise KeyError(f"unknown pipeline step {name!r}; known: {known}")
