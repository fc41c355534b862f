"""A service's HTTP API, served by uvicorn in the worker's own event loop.

The API shares the worker's database engine and wakes its relay after a commit, so a request
that changes state writes its outgoing messages to the same outbox as the handlers do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn
from loguru import logger

from config.settings import Settings


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the worker's SIGTERM drains everything."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """Serves `app` on the configured host and port until `stop`."""

    def __init__(self, app: Any, settings: Settings, name: str) -> None:
        config = uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._name, self._settings = name, settings
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listening once this returns; a port already taken fails the worker's start."""
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"{self._name} API did not start")
            await asyncio.sleep(0.02)
        logger.info(
            "{} API on {}:{}", self._name, self._settings.http_host, self._settings.http_port
        )

    async def stop(self) -> None:
        """Finish the requests in flight, then close the listener."""
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
