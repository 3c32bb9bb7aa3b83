"""The one Server-Sent Events parser, shared by the gateway's relay and the benchmark client.

It works on bytes as they arrive from the network and hands back whole events, each with its raw
bytes (so the gateway can relay them untouched) and its joined ``data`` payload (so usage can be read).

An event that grows past ``max_event_bytes`` without its blank line raises ``EventTooLarge``: a
hostile upstream that never ends an event cannot make the parser hold gigabytes (issue 18 #7).
The bytes of an unfinished event are kept as a list and joined once, when its blank line comes,
so a large event costs linear time, not a copy of everything so far per network chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE = b"[DONE]"
MAX_EVENT_BYTES = 8 * 1024 * 1024  # default bound on one event (the server's max_event_bytes)


class EventTooLarge(ValueError):
    """An event (or a line) longer than the parser's ``max_event_bytes``."""


@dataclass(slots=True)
class SSEEvent:
    raw: bytes  # the event as received, including its terminating blank line
    data: bytes | None  # the joined ``data:`` lines, or None for comment/keep-alive events


class SSEParser:
    """Incremental parser: ``feed`` network chunks, get complete events back."""

    __slots__ = ("_buf", "_parts", "_size", "max_event_bytes")

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buf = b""
        self._parts: list[bytes] = []  # chunks after _buf that cannot have ended an event
        self._size = 0  # bytes in _buf and _parts
        self.max_event_bytes = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._buf and not _may_end_event(self._parts[-1] if self._parts else self._buf, chunk):
            self._size += len(chunk)
            if self._size > self.max_event_bytes:
                self._too_large()
            self._parts.append(chunk)
            return []
        if self._parts:
            self._parts.append(chunk)
            buf = self._buf + b"".join(self._parts)
            self._parts = []
        else:
            buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # Normalise CRLF and bare CR line ends; a lone trailing CR may be half of a CRLF.
            keep_cr = buf.endswith(b"\r")
            if keep_cr:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buf += b"\r"
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            events.append(_parse_event(buf[start : end + 2]))
            start = end + 2
        self._buf = buf[start:]
        self._size = len(self._buf)
        if self._size > self.max_event_bytes:
            self._too_large()
        return events

    def _too_large(self) -> None:
        size, self._buf, self._parts, self._size = self._size, b"", [], 0
        raise EventTooLarge(
            f"the upstream sent an event of more than {self.max_event_bytes} bytes "
            f"({size} bytes without the blank line that ends an event)"
        )

    def flush(self) -> list[SSEEvent]:
        """Return a final event left without its blank line when the stream ended."""
        if self._parts:
            self._buf += b"".join(self._parts)
            self._parts = []
        rest, self._buf, self._size = self._buf.rstrip(b"\r\n"), b"", 0
        if not rest.strip():
            return []
        return [_parse_event(rest + b"\n\n")]

    @property
    def pending(self) -> bytes:
        if self._parts:
            self._buf += b"".join(self._parts)
            self._parts = []
        return self._buf


def _may_end_event(before: bytes, chunk: bytes) -> bool:
    """Whether ``chunk``, after ``before``, can hold the end of an event: a blank line in it, one
    across the seam, or any CR (then the full normalisation decides)."""
    return (
        b"\n\n" in chunk
        or b"\r" in chunk
        or before.endswith(b"\r")
        or (before.endswith(b"\n") and chunk.startswith(b"\n"))
    )


def _parse_event(raw: bytes) -> SSEEvent:
    if raw.startswith(b"data: ") and raw.find(b"\n") == len(raw) - 2:
        # Fast path: one ``data: ...`` line, the shape every OpenAI-compatible server sends.
        return SSEEvent(raw, raw[6:-2])
    parts: list[bytes] = []
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
    return SSEEvent(raw, b"\n".join(parts) if parts else None)


def encode_event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"
