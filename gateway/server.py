"""uvicorn, told to release long-polls the moment a stop signal arrives."""

from __future__ import annotations

import gc
from types import FrameType

import uvicorn
from fastapi import FastAPI


class GatewayServer(uvicorn.Server):
    """On SIGTERM/SIGINT, answer every waiting long-poll with the order as it is, then stop."""

    def __init__(self, app: FastAPI, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.notifier.close()
        super().handle_exit(sig, frame)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve the gateway until a stop signal; long-polls end at once, requests finish."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    gc.collect()
    gc.freeze()  # what the imports made lives as long as the process: no collection walks it
    GatewayServer(app, config).run()
