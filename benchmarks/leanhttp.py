"""A lean HTTP/1.1 client: keep-alive connections, Content-Length bodies, nothing else.

A request that fails on a connection the server closed while it was idle is sent again on a new
one (Warren's requests are safe to repeat: POSTs carry an Idempotency-Key).

httpx spends a few milliseconds of CPU per request; on a two-core machine shared with the system
under test, that is CPU taken from it. This client costs a small fraction of that, so the load
generator stays light (as the baseline's aio-pika driver is). It speaks only what Warren's API
answers: HTTP/1.1 with Content-Length, no redirects, no chunked bodies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any


class HttpError(Exception):
    """The request failed: no connection, a broken answer, or a status of 400 or more."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one response: its status code and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise ValueError("chunked responses are not supported")
    body = await reader.readexactly(length) if length else b""
    return int(head[9:12]), body


class LeanClient:
    """Requests to one host over a pool of keep-alive connections (one request at a time each)."""

    def __init__(self, host: str, port: int, headers: Mapping[str, str]) -> None:
        self._host, self._port = host, port
        self._head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self,
        method: str,
        target: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer (HttpError on failure or status >= 400)."""
        payload = b"" if body is None else json.dumps(body).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        if payload:
            extra += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        request = (
            f"{method} {target} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"{self._head}{extra}\r\n"
        ).encode() + payload
        while True:
            reused = bool(self._idle)
            try:
                reader, writer = self._idle.pop() if reused else await self._connect()
            except OSError as exc:
                raise HttpError(f"cannot connect: {exc}") from exc
            try:
                writer.write(request)
                status, answer = await read_response(reader)
                break
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if reused and not isinstance(exc, ValueError):
                    continue  # the server closed an idle connection: send it on a new one
                raise HttpError(f"{method} {target}: {exc!r}") from exc
        self._idle.append((reader, writer))
        if status >= 400:
            raise HttpError(f"{method} {target}: {status} {answer[:200]!r}")
        return json.loads(answer)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self._host, self._port)

    async def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()
