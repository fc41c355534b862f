"""Natural batching: alone when idle, together under load, one outcome per item."""

from __future__ import annotations

import asyncio

import pytest

from workers.runtime.batch import Batches


async def test_an_item_alone_runs_at_once_and_what_arrives_meanwhile_runs_together() -> None:
    seen: list[list[int]] = []
    release = asyncio.Event()

    async def run(items: list[int]) -> list[int]:
        seen.append(items)
        if len(seen) == 1:
            await release.wait()  # the first batch is busy while the others arrive
        return [item * 10 for item in items]

    batches: Batches[int, int] = Batches(run, max_size=3)
    first = asyncio.create_task(batches.submit(0))
    await asyncio.sleep(0.01)
    rest = [asyncio.create_task(batches.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.01)
    release.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [10, 20, 30, 40, 50]
    assert seen == [[0], [1, 2, 3], [4, 5]]


async def test_each_submitter_gets_its_own_outcome_and_a_failed_run_reaches_all() -> None:
    async def run(items: list[str]) -> list[str | BaseException]:
        if "boom" in items:
            raise RuntimeError("the whole batch failed")
        return [ValueError(item) if item.startswith("bad") else item.upper() for item in items]

    batches: Batches[str, str] = Batches(run, max_size=10)
    outcomes = await asyncio.gather(
        batches.submit("a"), batches.submit("bad-b"), batches.submit("c"), return_exceptions=True
    )
    assert outcomes[0] == "A" and outcomes[2] == "C"
    assert isinstance(outcomes[1], ValueError)
    with pytest.raises(RuntimeError, match="whole batch"):
        await batches.submit("boom")
    assert await batches.submit("after") == "AFTER"  # the batcher keeps going


def test_a_batch_holds_at_least_one_item() -> None:
    async def run(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError, match="at least one"):
        Batches(run, max_size=0)
