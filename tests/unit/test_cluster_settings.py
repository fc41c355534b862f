"""Several broker nodes: settings split them, quorum queues ask for their replicas, the topology
check reports a queue with fewer replicas than asked, and nothing prints a password."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from config.settings import Settings
from workers.ops.doctor import redact
from workers.ops.topology_check import check_queue
from workers.runtime.discovery import workers
from workers.runtime.topology import build_plan

NODES = "amqp://w:pw@rabbit-1:5672/shop, amqp://w:pw@rabbit-2:5673/shop,amqp://w:p,w@rabbit-3/shop"
QUEUE = workers()[0].queue


def cluster(**values: Any) -> Settings:
    return Settings(_env_file=None, broker_url=NODES, **values)


def test_a_comma_separated_broker_url_names_every_node_and_keeps_commas_inside_a_url() -> None:
    settings = cluster()

    assert settings.amqp_urls() == [
        "amqp://w:pw@rabbit-1:5672/shop",
        "amqp://w:pw@rabbit-2:5673/shop",
        "amqp://w:p,w@rabbit-3/shop",
    ]
    assert settings.amqp_urls("v/2")[1] == "amqp://w:pw@rabbit-2:5673/v%2F2"
    assert settings.vhost == "shop"


def test_one_broker_url_stays_one_url() -> None:
    settings = Settings(_env_file=None, broker_url="amqp://w:pw@rabbit:5672/")

    assert settings.amqp_urls() == ["amqp://w:pw@rabbit:5672/"]
    assert settings.amqp_url("x") == "amqp://w:pw@rabbit:5672/x"
    assert settings.quorum_group_size() is None


@pytest.mark.parametrize(("configured", "expected"), [(None, 3), (2, 2), (5, 5)])
def test_quorum_queues_ask_for_one_replica_per_node_unless_configured(
    configured: int | None, expected: int
) -> None:
    plan = build_plan(cluster(quorum_replicas=configured))

    quorum = [q for q in plan.queues if q.arguments.get("x-queue-type") == "quorum"]
    assert quorum
    assert {q.arguments["x-quorum-initial-group-size"] for q in quorum} == {expected}


def test_quorum_replicas_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        cluster(quorum_replicas=0)


def test_redact_masks_the_password_of_every_node() -> None:
    shown = redact(",".join(cluster().amqp_urls()))

    assert "pw" not in shown and "p,w" not in shown
    assert shown.count("***") == 3


def _live(members: list[str]) -> dict[str, Any]:
    planned = next(q for q in build_plan(cluster()).queues if q.name == QUEUE)
    return {"type": "quorum", "arguments": planned.arguments, "members": members}


def test_a_queue_with_fewer_replicas_than_asked_is_reported() -> None:
    settings = cluster()
    spec = next(q for q in build_plan(settings).queues if q.name == QUEUE)

    found = check_queue(spec, _live(["rabbit@a"]), settings, cluster_size=3)

    assert [d.subject for d in found] == [f"queue {QUEUE}"]
    assert "1 replica(s)" in found[0].problem and "3 asked" in found[0].problem
    assert "rabbitmq-queues" in found[0].fix


def test_replicas_are_asked_no_more_than_the_cluster_has_nodes() -> None:
    settings = cluster()
    spec = next(q for q in build_plan(settings).queues if q.name == QUEUE)

    assert check_queue(spec, _live(["rabbit@a"]), settings, cluster_size=1) == []
    assert check_queue(spec, _live(["a", "b", "c"]), settings, cluster_size=3) == []
