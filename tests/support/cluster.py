"""A private three-node RabbitMQ cluster on this machine, for tests that stop broker nodes.

The machine's own broker pins its listener to 127.0.0.1:5672 in its config file, so each extra
node gets its own config file, node name, AMQP, management and distribution ports, data and log
directories (under the test's tmp dir) and the same Erlang cookie; nodes 2 and 3 join node 1.
Nothing here touches the machine's own node. Where a node cannot start, the test fails with the
node's own words (never a skip).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

RABBITMQ_BIN = Path(os.environ.get("WARREN_TEST_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
# Below the kernel's ephemeral range, so no client connection holds one of them by chance.
PORT_RANGE = (20000, 32000)
START_TIMEOUT_S = 90.0
CTL_TIMEOUT_S = 60.0


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` distinct ports, below the ephemeral range, that nothing listens on now."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(*PORT_RANGE)
        if port not in ports and _port_is_free(port):
            ports.append(port)
    return ports


@dataclass
class Node:
    """One broker node: its name, ports and directory, and its process while it runs."""

    name: str
    amqp_port: int
    management_port: int
    dist_port: int
    home: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> Path:
        return self.home / self.name.partition("@")[0]

    def amqp_url(self, vhost: str = "") -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/{vhost}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def env(self) -> dict[str, str]:
        d = self.directory
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),  # holds the cluster's Erlang cookie
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "data"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def write_config(self) -> None:
        d = self.directory
        (d / "log").mkdir(parents=True, exist_ok=True)
        (d / "rabbitmq-env.conf").write_text("")  # not the machine's (it names its node)
        (d / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (d / "rabbitmq.conf").write_text(
            "loopback_users = none\n"
            f"management.tcp.port = {self.management_port}\n"
            "management.tcp.ip = 127.0.0.1\n"
            # the tests stop nodes on purpose: never let a partition pause the survivors
            "cluster_partition_handling = ignore\n"
        )

    def log_tail(self, lines: int = 25) -> str:
        out = self.directory / "server.out"
        text = out.read_text(errors="replace") if out.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _spawn(node: Node) -> subprocess.Popen[bytes]:
    """The node's server process in its own session, its output in its directory."""
    with open(node.directory / "server.out", "ab") as out:
        return subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=node.env(),
            cwd=node.directory,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class RabbitCluster:
    """Starts, stops and restarts the nodes of a private cluster; removes it afterwards."""

    def __init__(self, home: Path, size: int = 3) -> None:
        self.home = home
        tag = secrets.token_hex(3)
        ports = free_ports(3 * size)
        self.nodes = [
            Node(f"warren-c{i + 1}-{tag}@localhost", *ports[3 * i : 3 * i + 3], home=home)
            for i in range(size)
        ]

    def amqp_urls(self, vhost: str = "") -> list[str]:
        return [node.amqp_url(vhost) for node in self.nodes]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def running(self) -> list[Node]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    async def start(self) -> None:
        """Start every node at once, then join nodes 2.. to node 1."""
        for tool in ("rabbitmq-server", "rabbitmqctl"):
            if not (RABBITMQ_BIN / tool).exists():
                pytest.fail(
                    f"cannot start a RabbitMQ cluster: {RABBITMQ_BIN / tool} is missing "
                    "(install rabbitmq-server, or set WARREN_TEST_RABBITMQ_BIN)",
                    pytrace=False,
                )
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        for node in self.nodes:
            node.write_config()
        await asyncio.gather(*(self.start_node(n) for n in self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            await self.ctl(node, "stop_app")
            await self.ctl(node, "join_cluster", first.name)
            await self.ctl(node, "start_app")

    async def start_node(self, node: Node) -> None:
        """Start (or restart) one node and wait until it runs."""
        node.process = process = _spawn(node)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            # await_startup gives up at once while the node has not registered with epmd yet
            try:
                await self.ctl(node, "await_startup", timeout_s=START_TIMEOUT_S)
                return
            except AssertionError as exc:
                failure = exc
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"RabbitMQ node {node.name} did not start: {failure}\n{node.log_tail()}",
                    pytrace=False,
                )
            await asyncio.sleep(0.5)

    async def stop_node(self, node: Node) -> None:
        """Stop one node the way an operator would (its clients see the connection close)."""
        await self.ctl(node, "stop")
        await self._reap(node)

    async def ctl(self, node: Node, *args: str, timeout_s: float = CTL_TIMEOUT_S) -> str:
        """Run `rabbitmqctl -n node ...`; its output, or AssertionError with its words."""
        argv = [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", node.name, *args]
        if args[0] == "await_startup":
            argv += ["--timeout", str(int(timeout_s))]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=node.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout_s + 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"rabbitmqctl {' '.join(args)} took over {timeout_s}s") from None
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(args)} failed: {text.strip()[-800:]}")
        return text

    async def _reap(self, node: Node, timeout_s: float = 30.0) -> None:
        process, node.process = node.process, None
        if process is None:
            return
        try:
            await asyncio.to_thread(process.wait, timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the node's own session, started above
            await asyncio.to_thread(process.wait)

    async def remove(self) -> None:
        """Stop every node and delete their data."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                os.killpg(node.process.pid, signal.SIGTERM)
        for node in self.nodes:
            await self._reap(node)
        shutil.rmtree(self.home, ignore_errors=True)
