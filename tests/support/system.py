"""The whole saga as separate worker processes in a test vhost, for end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aio_pika
from sqlmodel import select

from config.settings import Environment, Settings
from contracts.base import Message
from contracts.envelope import Envelope
from contracts.orders import PlaceOrder
from contracts.registry import default_registry
from contracts.topology import exchange_for, routing_key_for
from outbox.amqp import from_wire
from outbox.db import create_engine, session_factory
from tests.support.card_provider import start_provider
from tests.support.harness import Process, consumer_ready, free_port, wait_for
from tests.support.roles import consumer_of
from workers.ops.readiness import http_probe
from workers.orders.tables import CustomerOrder
from workers.runtime.discovery import service, worker_names, workers

WORKERS = worker_names()
API_SLOTS = 3  # instances of a service with an HTTP API that may run at once, each on its port


class System:
    """Starts, stops and observes the four workers; talks to them like the gateway would."""

    def __init__(
        self,
        amqp_url: str,
        database_urls: dict[str, str],
        tmp_path: Path,
        management_url: str | None = None,
        **env: str,
    ) -> None:
        self.amqp_url = amqp_url
        self.management_url = management_url
        self.database_urls = database_urls
        self.extra_env = env
        self.tmp_path = tmp_path
        self.processes: dict[str, Process] = {}
        self.processes_seen: dict[str, Process] = {}
        # the ports of the HTTP services' instances, known before any starts: the gateway is
        # configured with all of them, as it would be with a DNS name
        self.api_ports = {
            s.name: [free_port() for _ in range(API_SLOTS)] for s in workers() if s.http
        }

    def env(self) -> dict[str, str]:
        urls = {f"WARREN_{s.upper()}_DB_URL": url for s, url in self.database_urls.items()}
        return {
            "WARREN_ENV": "test",
            "WARREN_BROKER_URL": self.amqp_url,
            "WARREN_LOG_JSON": "false",
            **urls,
            **self.extra_env,
        }

    def settings(self) -> Settings:
        fields = {f"{s}_db_url": url for s, url in self.database_urls.items()}
        return Settings(
            _env_file=None,
            env=Environment.TEST,
            broker_url=self.amqp_url,
            var_dir=self.tmp_path / "var",
            **fields,
        )

    def api_env(self) -> dict[str, str]:
        """Where the gateway finds each HTTP service's instances."""
        return {
            f"WARREN_{name.upper()}_API_URLS": ",".join(f"http://127.0.0.1:{p}" for p in ports)
            for name, ports in self.api_ports.items()
        }

    def worker(self, name: str, slot: int = 0) -> Process:
        """A worker process, not waited for; an HTTP service serves on its slot's port."""
        env = self.env()
        if name in self.api_ports:
            env["WARREN_HTTP_PORT"] = str(self.api_ports[name][slot])
        return Process(
            "workers.cli",
            env,
            args=["worker", name],
            probe=consumer_ready(
                self.amqp_url, service(name).queue, f"{name}-worker", self.management_url
            ),
        )

    async def start(self, *services: str, copies: int = 1) -> None:
        """Start workers (all of them by default) and wait until each consumes.

        With `copies`, each service runs that many instances: `orders`, `orders#2`, ... (an
        HTTP service's copy N on its slot's port); the first copies start alone, so that one
        process creates a database's tables before the others look for them.
        """
        for copy in range(1, copies + 1):
            names = [name if copy == 1 else f"{name}#{copy}" for name in services or WORKERS]
            started = [self.worker(name.partition("#")[0], copy - 1) for name in names]
            for name, process in zip(names, started, strict=True):
                self.processes[name] = self.processes_seen[name] = process
            await asyncio.gather(*(p.ready(60) for p in started))

    async def start_provider(self, db_url: str, **behaviour: str) -> str:
        """Start the card provider service; workers started afterwards call it. Its URL."""
        process, url = await start_provider(db_url, **behaviour)
        self.processes["provider"] = self.processes_seen["provider"] = process
        self.extra_env["WARREN_PAYMENT_PROVIDER_URL"] = url
        return url

    async def start_gateway(
        self, port: int, broker_url: str | None = None, probe: str = "/readyz", **env: str
    ) -> Process:
        """Start the HTTP gateway and wait until `probe` (by default /readyz) answers."""
        gateway_env = self.env() | self.api_env() | {"WARREN_GATEWAY_PORT": str(port), **env}
        if broker_url is not None:
            gateway_env["WARREN_BROKER_URL"] = broker_url
        readyz = http_probe(f"http://127.0.0.1:{port}{probe}")
        process = Process("workers.cli", gateway_env, args=["gateway"], probe=readyz)
        self.processes["gateway"] = self.processes_seen["gateway"] = process
        return await process.ready(60)

    def stop(self, service: str) -> Process:
        """Stop one process for good (SIGKILL): as if its machine vanished."""
        process = self.processes.pop(service)
        process.kill()
        return process

    def restart(self, name: str) -> Process:
        """Kill one worker instance (SIGKILL) and start it again (`ready()` waits for it)."""
        self.stop(name)
        service_name, _, copy = name.partition("#")
        process = self.worker(service_name, int(copy or 1) - 1)
        self.processes[name] = self.processes_seen[name] = process
        return process

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.kill()
        self.processes.clear()

    async def send(self, messages: Iterable[Message]) -> None:
        """Publish messages as the gateway's relay would: confirmed, mandatory, persistent."""
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchanges: dict[str, Any] = {}

            async def publish(message: Message) -> None:
                name = exchange_for(type(message))
                if name not in exchanges:
                    exchanges[name] = await channel.get_exchange(name)
                wire = default_registry().encode(
                    Envelope(message, correlation_id=str(message.order_id))
                )
                await exchanges[name].publish(
                    from_wire(wire, "tests"),
                    routing_key_for(type(message)),
                    mandatory=True,
                )

            pending = [publish(m) for m in messages]
            for start in range(0, len(pending), 100):
                await asyncio.gather(*pending[start : start + 100])

    async def orders(self) -> dict[str, CustomerOrder]:
        """Every order the saga knows, by id."""
        engine = create_engine(self.database_urls[consumer_of(PlaceOrder).name])
        try:
            async with session_factory(engine)() as session:
                return {o.order_id: o for o in (await session.exec(select(CustomerOrder))).all()}
        finally:
            await engine.dispose()

    async def wait_terminal(
        self, order_ids: Iterable[str], timeout: float = 120
    ) -> dict[str, CustomerOrder]:
        """Wait until every order is terminal; the orders."""
        wanted = {str(o) for o in order_ids}

        async def all_terminal() -> dict[str, CustomerOrder] | None:
            known = await self.orders()
            done = {o: known[o] for o in wanted if o in known and known[o].status.is_terminal}
            return done if len(done) == len(wanted) else None

        result: dict[str, CustomerOrder] = await wait_for(
            all_terminal, timeout=timeout, what="terminal orders"
        )
        return result
