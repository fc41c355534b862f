"""Every error is `application/problem+json`, never a stack trace (RFC 9457)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
UNAVAILABLE = (DBAPIError, OSError, TimeoutError)


class ProblemError(Exception):
    """An error a client should see, with its HTTP status."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers or {}


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _problem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem(exc.status, exc.title, exc.detail, exc.headers, instance=request.url.path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "problem": e["msg"]}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['problem']}" for e in errors[:5])
    return problem(
        422, "The request is not valid", detail, instance=request.url.path, errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(
        exc.status_code, str(exc.detail), None, dict(exc.headers or {}), instance=request.url.path
    )


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: {}: {}", type(exc).__name__, exc)
    detail = "The order database cannot be reached; nothing was stored. Retry shortly."
    return problem(
        503, "Service unavailable", detail, {"Retry-After": "5"}, instance=request.url.path
    )


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on {} {}", request.method, request.url.path)
    return problem(500, "Internal error", "Something went wrong on our side; it has been logged.")


async def problem_for(request: Request, exc: Exception) -> JSONResponse | None:
    """The answer the installed handlers give to a client's or the database's error, or None."""
    if isinstance(exc, ProblemError):
        return await _problem_error(request, exc)
    if isinstance(exc, UNAVAILABLE):
        return await _unavailable(request, exc)
    return None


def install(app: FastAPI) -> None:
    """Route every error through a problem+json handler."""
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, _unavailable)
    app.add_exception_handler(Exception, unexpected)
