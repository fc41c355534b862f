"""W3C traceparent handling: continue a valid trace with a new span, start one otherwise."""

from __future__ import annotations

from workers.runtime import tracing

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_child_continues_the_trace_with_a_new_span_and_keeps_the_flags() -> None:
    child = tracing.child_of(PARENT)
    trace_id, span_id, flags = tracing.parse(child) or ("", "", "")
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span_id != "00f067aa0ba902b7" and len(span_id) == 16
    assert flags == "01"


def test_missing_or_invalid_context_starts_a_new_trace() -> None:
    for bad in (None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "01-abc"):
        assert tracing.parse(bad) is None
        started = tracing.child_of(bad)
        assert tracing.parse(started) is not None
    assert tracing.trace_id(tracing.child_of(None)) != tracing.trace_id(tracing.child_of(None))


def test_with_an_exporter_each_span_is_exported_in_the_incoming_trace_under_its_parent() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    spans = tracing.Spans("billing", exporter=exporter)

    with spans.span(
        "billing.invoices process orders.PlaceOrder", PARENT, queue="billing.invoices"
    ) as own:
        pass
    spans.shutdown()

    [span] = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert own == f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"
    assert span.resource.attributes["service.name"] == "warren-billing"
    assert span.attributes["queue"] == "billing.invoices"
