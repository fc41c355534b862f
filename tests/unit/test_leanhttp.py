"""The bench's lean HTTP client against a tiny real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from benchmarks.leanhttp import HttpError, LeanClient


class Server:
    """Answers `{"path": ..., "body": ...}`; `/missing` is a 404; `close` drops idle connections."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                length = next(
                    (
                        int(v)
                        for k, _, v in (x.partition(": ") for x in lines)
                        if k == "Content-Length"
                    ),
                    0,
                )
                body = (await reader.readexactly(length)).decode() if length else None
                path = lines[0].split()[1]
                status = "404 Not Found" if path == "/missing" else "200 OK"
                answer = json.dumps({"path": path, "body": body}).encode()
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Length: {len(answer)}\r\n\r\n".encode() + answer
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def drop_idle(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()


@pytest.fixture
async def served() -> AsyncIterator[tuple[Server, LeanClient]]:
    server = Server()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = LeanClient("127.0.0.1", port, {"Authorization": "Bearer k"})
    yield server, client
    await client.close()
    listener.close()


async def test_requests_share_a_kept_alive_connection_and_carry_json(
    served: tuple[Server, LeanClient],
) -> None:
    server, client = served
    first = await client.request("POST", "/orders", {"a": 1}, {"Idempotency-Key": "k1"})
    second = await client.request("GET", "/orders/1?wait=10")
    assert first == {"path": "/orders", "body": '{"a": 1}'}
    assert second == {"path": "/orders/1?wait=10", "body": None}
    assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    served: tuple[Server, LeanClient],
) -> None:
    server, client = served
    await client.request("GET", "/one")
    server.drop_idle()
    await asyncio.sleep(0.05)
    assert await client.request("GET", "/two") == {"path": "/two", "body": None}
    assert server.connections == 2


async def test_an_error_status_is_an_http_error(served: tuple[Server, LeanClient]) -> None:
    _, client = served
    with pytest.raises(HttpError, match="404"):
        await client.request("GET", "/missing")
