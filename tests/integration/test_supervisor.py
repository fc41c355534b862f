"""The one supervisor knows a child is ready from the broker, never from its log lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.settings import Settings
from tests.support.harness import REPO
from tests.support.probe_kit import ProbeKit
from workers.ops.readiness import consumer_probe
from workers.ops.supervisor import Child, ChildDied, Supervisor


@pytest.fixture
def kit(amqp_url: str, make_database_url, tmp_path: Path) -> ProbeKit:
    return ProbeKit(amqp_url, make_database_url("sqlite-inline"), tmp_path, "supervised")


def probe_worker(kit: ProbeKit, settings: Settings, **env: str) -> Child:
    """A probe worker as the supervisor runs it, ready when it consumes the kit's queue."""
    probe = consumer_probe(settings, kit.queue, "scripted-worker")
    full_env = os.environ | kit.env(**env)
    return Child("scripted", "tests.support.probe", [], full_env, probe=probe, cwd=REPO)


async def test_a_worker_that_logs_only_warnings_is_seen_ready_and_drains_on_stop(
    kit: ProbeKit, test_settings: Settings
) -> None:
    # given a worker that logs nothing below WARNING (so no "consuming" line)
    supervisor = Supervisor()
    child = supervisor.spawn(probe_worker(kit, test_settings, WARREN_LOG_LEVEL="WARNING"))
    try:
        # when the supervisor waits for it
        await supervisor.ready(timeout_s=60)

        # then the broker's consumer made it ready, though it never said so
        assert child.ready and supervisor.laggards() == []
        assert not any("consuming" in line for line in child.lines), child.tail()
    finally:
        # and a stop drains it: a clean exit, not a kill
        assert await child.stop(grace_s=30) == 0, child.tail()


async def test_a_child_that_never_consumes_is_not_ready(
    kit: ProbeKit, test_settings: Settings
) -> None:
    # given a process that runs but never consumes the queue its probe watches
    probe = consumer_probe(test_settings, kit.queue, "scripted-worker")
    idle = Child("idle", "http.server", ["0", "--bind", "127.0.0.1"], dict(os.environ), probe)
    supervisor = Supervisor()
    supervisor.spawn(idle)
    try:
        # when the supervisor waits, then it gives up and names the laggard
        with pytest.raises(TimeoutError, match="idle not ready after 2s"):
            await supervisor.ready(timeout_s=2)
        assert supervisor.laggards() == [idle] and idle.running
    finally:
        supervisor.stop_all(grace_s=5)
    assert not idle.running


async def test_a_child_that_dies_before_it_is_ready_fails_the_wait_with_its_last_words(
    kit: ProbeKit, test_settings: Settings
) -> None:
    # given a process that exits at once with an error
    probe = consumer_probe(test_settings, kit.queue, "scripted-worker")
    doomed = Child("doomed", "json.tool", ["/no/such/file"], dict(os.environ), probe)
    supervisor = Supervisor()
    supervisor.spawn(doomed)

    # when the supervisor waits, then the death fails the wait, with what the child said
    with pytest.raises(ChildDied, match=r"(?s)doomed exited \(exit code 2\).*No such file"):
        await supervisor.ready(timeout_s=30)
    assert await supervisor.first_death() is doomed
