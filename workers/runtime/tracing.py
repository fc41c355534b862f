"""W3C trace context (`traceparent`) carried from the HTTP request through every hop.

Each hop continues the trace it received with a span of its own, so the messages it sends name
it as their parent; a message without a valid `traceparent` starts a new trace.
"""

from __future__ import annotations

import re
import secrets

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
