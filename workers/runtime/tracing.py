"""W3C trace context (`traceparent`) carried from the HTTP request through every hop.

Each hop continues the trace it received with a span of its own, so the messages it sends name
it as their parent; a message without a valid `traceparent` starts a new trace.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32


def parse(traceparent: str | None) -> tuple[str, str, str] | None:
    """`(trace_id, parent_id, flags)` of a valid version-00 traceparent, else None."""
    match = _TRACEPARENT.match((traceparent or "").strip().lower())
    if match is None or match.group(1) == _INVALID_TRACE or match.group(2) == "0" * 16:
        return None
    return match.group(1), match.group(2), match.group(3)


def child_of(traceparent: str | None) -> str:
    """A traceparent for a new span: in the incoming trace, or in a new one."""
    parsed = parse(traceparent)
    trace_id, flags = (parsed[0], parsed[2]) if parsed else (secrets.token_hex(16), "01")
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a traceparent, if it is valid."""
    parsed = parse(traceparent)
    return parsed[0] if parsed else None


class Spans:
    """Opens a span per unit of work; exports it over OTLP when an endpoint is configured.

    Without an exporter it only propagates ids (`child_of`); with one, the ids come from the
    OpenTelemetry SDK, so the exported spans and the `traceparent` on the wire agree.
    """

    def __init__(self, service: str, *, endpoint: str | None = None, exporter: Any = None) -> None:
        self._tracer: Any = None
        self._provider: Any = None
        if endpoint or exporter is not None:
            self._tracer = self._sdk_tracer(service, endpoint, exporter)

    def _sdk_tracer(self, service: str, endpoint: str | None, exporter: Any) -> Any:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        self._provider = TracerProvider(
            resource=Resource.create({"service.name": f"warren-{service}"})
        )
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self._provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
            )
        else:
            self._provider.add_span_processor(SimpleSpanProcessor(exporter))
        return self._provider.get_tracer("warren")

    @contextmanager
    def span(self, name: str, parent: str | None, **attributes: str) -> Iterator[str]:
        """A span under `parent` (a traceparent); yields the span's own traceparent."""
        if self._tracer is None:
            yield child_of(parent)
            return
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        context = TraceContextTextMapPropagator().extract({"traceparent": parent} if parent else {})
        with self._tracer.start_as_current_span(
            name, context=context, attributes=attributes
        ) as span:
            own = span.get_span_context()
            yield f"00-{own.trace_id:032x}-{own.span_id:016x}-{int(own.trace_flags):02x}"

    def shutdown(self) -> None:
        """Flush and stop the exporter, if any."""
        if self._provider is not None:
            self._provider.shutdown()
