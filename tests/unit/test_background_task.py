"""A background task that fails is restarted with backoff, and says so until it is up again."""

from __future__ import annotations

import asyncio

import aiormq.exceptions

from tests.support.harness import wait_for
from workers.runtime.background import BackgroundTask, TaskState
from workers.runtime.metrics import TASK_RESTARTS
from workers.runtime.outages import is_outage


async def test_a_failing_task_is_restarted_until_it_runs_and_is_unhealthy_meanwhile() -> None:
    stop = asyncio.Event()
    attempts: list[int] = []
    healthy_while_failing: list[bool] = []
    release = asyncio.Event()

    async def body(task: BackgroundTask) -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ValueError("a fault")
        healthy_while_failing.append(task.healthy)
        task.up()
        await release.wait()
        await stop.wait()

    before = TASK_RESTARTS.labels("unit", "flaky", "ValueError")._value.get()
    task = BackgroundTask("unit", "flaky", body, stop, base_s=0.01, cap_s=0.02)
    task.start()
    await wait_for(lambda: _is(task, TaskState.RUNNING), what="the third attempt to run")
    assert attempts == [1, 2, 3]
    assert healthy_while_failing == [False], "not healthy from the failure until up again"
    assert task.healthy
    assert task.restarts == 2 and task.last_error == "ValueError"
    assert TASK_RESTARTS.labels("unit", "flaky", "ValueError")._value.get() == before + 2
    release.set()
    stop.set()
    await asyncio.wait_for(task.wait(), 5)
    assert task.state is TaskState.STOPPED
    assert attempts == [1, 2, 3], "a task stopped on purpose is not restarted"


async def test_a_task_that_returns_on_its_own_is_restarted() -> None:
    stop = asyncio.Event()
    runs: list[int] = []

    async def body(task: BackgroundTask) -> None:
        task.up()
        runs.append(1)
        if len(runs) >= 2:
            await stop.wait()

    task = BackgroundTask("unit", "quitter", body, stop, base_s=0.01, cap_s=0.02)
    task.start()
    await wait_for(lambda: _is(task, TaskState.RUNNING, runs=2), what="a second run")
    assert task.restarts == 1 and task.last_error == "RuntimeError"
    stop.set()
    await asyncio.wait_for(task.wait(), 5)


async def _is(task: BackgroundTask, state: TaskState, runs: int = 0) -> bool:
    return task.state is state and task.restarts >= runs - 1


async def test_an_outage_is_waited_out_without_making_the_task_unhealthy() -> None:
    stop = asyncio.Event()
    seen: list[tuple[TaskState, bool]] = []

    async def body(task: BackgroundTask) -> None:
        seen.append((task.state, task.healthy))
        if len(seen) == 1:
            raise ConnectionRefusedError("broker away")
        task.up()
        await stop.wait()

    task = BackgroundTask("unit", "patient", body, stop, base_s=0.01, cap_s=0.02)
    task.start()
    await wait_for(lambda: _is(task, TaskState.RUNNING), what="the second attempt to run")
    assert seen == [(TaskState.STARTING, True), (TaskState.STARTING, True)]
    assert task.restarts == 1
    stop.set()
    await asyncio.wait_for(task.wait(), 5)


def test_a_refused_declaration_is_a_fault_and_a_lost_connection_an_outage() -> None:
    refused = aiormq.exceptions.ChannelPreconditionFailed("PRECONDITION_FAILED - inequivalent arg")
    lost = aiormq.exceptions.ChannelInvalidStateError("closed")
    assert not is_outage(refused)
    assert is_outage(lost)
    assert is_outage(ConnectionResetError())
    assert not is_outage(ValueError("a bug"))
