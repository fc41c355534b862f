"""A lean HTTP/1.1 load generator: keep-alive connections, each sending `POST /orders` in turn.

Far cheaper per request than httpx, so the server, not the client, is the limit. Run as
`python -m benchmarks.httpload PORT CONNECTIONS SECONDS START_AT BODY_FILE`; the API key comes
from `WARREN_BENCH_API_KEY`. Prints one JSON line: requests answered per status, and its peak RSS.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from benchmarks.leanhttp import read_response
from benchmarks.procfs import peak_rss_mb

HOST = "127.0.0.1"


def requests(port: int, body: bytes, api_key: str, tag: str) -> Iterator[bytes]:
    """Ready-to-send requests, each with its own Idempotency-Key."""
    head = (
        f"POST /orders HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    ).encode()
    for i in itertools.count():
        yield head + f"Idempotency-Key: load-{tag}-{i}\r\n\r\n".encode() + body


async def connection(
    port: int, outgoing: Iterator[bytes], until: float, counts: Counter[str]
) -> None:
    """Send requests one after the other on a keep-alive connection until `until`."""
    while time.time() < until:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            while time.time() < until:
                writer.write(next(outgoing))
                status, _ = await read_response(reader)
                if time.time() < until:
                    counts[str(status)] += 1
            writer.close()
        except (OSError, asyncio.IncompleteReadError):
            counts["error"] += 1
            await asyncio.sleep(0.05)


async def run(port: int, connections: int, seconds: float, start_at: float, body: bytes) -> None:
    api_key = os.environ.get("WARREN_BENCH_API_KEY", "")
    await asyncio.sleep(max(0.0, start_at - time.time()))
    counts: Counter[str] = Counter()
    until = start_at + seconds
    await asyncio.gather(
        *(
            connection(port, requests(port, body, api_key, f"{os.getpid()}-{c}"), until, counts)
            for c in range(connections)
        )
    )
    print(json.dumps({"counts": counts, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    port, connections, seconds, start_at, body_file = sys.argv[1:6]
    body = Path(body_file).read_bytes()
    asyncio.run(run(int(port), int(connections), float(seconds), float(start_at), body))


if __name__ == "__main__":
    main()
