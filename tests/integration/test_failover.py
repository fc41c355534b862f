"""A connection given several broker addresses starts on the first that answers and says when it
loses and regains the broker."""

from __future__ import annotations

from prometheus_client import REGISTRY

from outbox.amqp import connect
from outbox.failover import FailoverConnection, node_of
from tests.support.cluster import free_ports
from tests.support.harness import wait_for


async def test_a_node_that_does_not_answer_is_skipped_at_start(amqp_url: str) -> None:
    (closed,) = free_ports(1)
    dead = amqp_url.replace(node_of(amqp_url), f"127.0.0.1:{closed}")

    connection = await connect([dead, amqp_url], "failover-test", timeout=5)
    try:
        assert isinstance(connection, FailoverConnection)
        assert node_of(connection.url) == node_of(amqp_url)
        channel = await connection.channel()
        await channel.close()
    finally:
        await connection.close()


async def test_a_lost_connection_is_counted_and_regained_on_the_next_node(amqp_url: str) -> None:
    (closed,) = free_ports(1)
    dead = amqp_url.replace(node_of(amqp_url), f"127.0.0.1:{closed}")
    # the live node first and last: the reconnect tries the dead one, then comes back round
    connection = await connect([amqp_url, dead], "failover-lost", timeout=5)
    assert isinstance(connection, FailoverConnection)
    before = _reconnects()
    try:
        assert connection.transport is not None
        await connection.transport.connection.close()  # as if the node went away

        async def reconnected() -> bool:
            return _reconnects() > before

        await wait_for(reconnected, timeout=30, what="the reconnect")
        assert _connected() == 1
        assert node_of(connection.url) == node_of(amqp_url)  # round the list and back
        channel = await connection.channel()
        await channel.close()
    finally:
        await connection.close()
    assert _reconnects() == before + 1


def _reconnects() -> float:
    labels = {"role": "failover-lost"}
    return REGISTRY.get_sample_value("warren_broker_reconnects_total", labels) or 0.0


def _connected() -> float | None:
    return REGISTRY.get_sample_value("warren_broker_connected", {"role": "failover-lost"})
