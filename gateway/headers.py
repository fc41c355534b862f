"""Security headers on every answer of the gateway, added by a plain ASGI middleware."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc load from jsDelivr and start with an inline script or style; ReDoc
# adds Google fonts and a blob: worker (docs/decisions.md, "A smaller gateway surface").
DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com; "
    b"connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; "
    b"form-action 'none'"
)


class SecurityHeaders:
    """ASGI middleware: nosniff, no framing, no referrer, a CSP, and HSTS over HTTPS."""

    def __init__(self, app: ASGIApp, docs_paths: Iterable[str] = ()) -> None:
        self.app, self.docs_paths = app, frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = security_headers(scope, self.docs_paths)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await self.app(scope, receive, with_headers)


def security_headers(
    scope: Scope, docs_paths: frozenset[str] = frozenset()
) -> list[tuple[bytes, bytes]]:
    """The headers every answer to this request gets."""
    csp = DOCS_CSP if scope["path"] in docs_paths else API_CSP
    added = [*COMMON, (b"content-security-policy", csp)]
    # the scheme is https only on TLS or from a proxy uvicorn trusts (--forwarded-allow-ips)
    if scope.get("scheme") == "https":
        added.append(HSTS)
    return added
