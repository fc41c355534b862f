"""Flat JSON logs through loguru, one object per line, bound to the message being handled."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from loguru import logger


def _flatten(record: Any) -> None:
    payload = {
        "ts": record["time"].isoformat(),
        "level": record["level"].name,
        "logger": record["name"],
        "msg": record["message"],
        **record["extra"],
    }
    payload.pop("_json", None)
    if record["exception"] is not None:
        payload["exc_type"] = getattr(record["exception"].type, "__name__", None)
    record["extra"]["_json"] = json.dumps(payload, default=str)


class _InterceptHandler(logging.Handler):
    """Sends stdlib logging (aio-pika, aiormq, SQLAlchemy) through loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(service: str, *, level: str = "INFO", json_lines: bool = True) -> None:
    """Log to stderr, as JSON lines (production) or readable text (a terminal)."""
    logger.remove()
    logger.configure(extra={"service": service}, patcher=_flatten if json_lines else None)
    if json_lines:
        logger.add(sys.stderr, format=lambda _: "{extra[_json]}\n", level=level, diagnose=False)
    else:
        logger.add(sys.stderr, level=level, diagnose=False)
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)
