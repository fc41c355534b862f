"""The carts worker serves its API without FastAPI (some 5 MiB of a worker's memory)."""

from __future__ import annotations

from tests.support.imports import loaded_after


def test_the_carts_worker_does_not_load_fastapi() -> None:
    assert loaded_after("workers.carts.bootstrap", "fastapi") == []
