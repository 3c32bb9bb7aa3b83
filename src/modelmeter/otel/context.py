"""W3C trace context on the hot path: read the caller's ``traceparent``, mint the gateway's span.

Only when export is on. It costs two random draws and a string format per call: the span itself is
built later, off the hot path, from the record, with these same ids (``CallRecord.trace``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_random_bits = random.getrandbits  # unique, not secret (as record ids: metering/record.py)
# version 00 (later versions: read the same first four fields, per the spec), lower-case hex only
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: int
    span_id: int  # the gateway's span for this call
    parent_span_id: int | None = None  # the caller's span, when it sent a traceparent
    sampled: bool = True  # the caller's sampled flag (ours: always sampled)

    def traceparent(self) -> str:
        """What goes upstream: the gateway's span is the parent of the upstream's work."""
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{'01' if self.sampled else '00'}"


def parse_traceparent(value: str | bytes | None) -> tuple[int, int, bool] | None:
    """(trace id, parent span id, sampled) of a valid header; None for anything else (ignored,
    per the spec: the call starts a new trace)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    m = _TRACEPARENT.fullmatch(value.strip())
    if m is None:
        return None
    version, trace, span, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest) or trace == "0" * 32 or span == "0" * 16:
        return None
    return int(trace, 16), int(span, 16), bool(int(flags, 16) & 1)


def start_trace(traceparent: str | bytes | None) -> TraceContext:
    """The gateway's span context: a child of the caller's span, or the root of a new trace."""
    parent = parse_traceparent(traceparent)
    span_id = _random_bits(64) or 1
    if parent is None:
        return TraceContext(_random_bits(128) or 1, span_id)
    trace_id, parent_id, sampled = parent
    return TraceContext(trace_id, span_id, parent_id, sampled)
