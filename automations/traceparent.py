"""W3C Trace Context `traceparent` headers: read a caller's trace id, write one for a run."""

import re
import secrets

# Version 00 only: `00-<trace id>-<parent id>-<flags>`, all lowercase hex.
TRACEPARENT_RE = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
TRACE_ID_RE = re.compile(r"[0-9a-f]{32}")
INVALID_TRACE_ID = "0" * 32
INVALID_PARENT_ID = "0" * 16


def trace_id_from_traceparent(value: str | None) -> str | None:
    """The trace id of a valid `traceparent` header value, else None (caller makes a new one)."""
    if not value:
        return None
    match = TRACEPARENT_RE.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    trace_id, parent_id, _flags = match.groups()
    if trace_id == INVALID_TRACE_ID or parent_id == INVALID_PARENT_ID:
        return None
    return trace_id


def traceparent_for(trace_id: str) -> str | None:
    """A sampled `traceparent` continuing `trace_id` with a new span id; None if it is invalid."""
    if not TRACE_ID_RE.fullmatch(trace_id or "") or trace_id == INVALID_TRACE_ID:
        return None
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"
