"""The one Server-Sent Events parser, shared by the gateway's relay and the benchmark client.

It works on bytes as they arrive from the network and hands back whole events, each with its raw
bytes (so the gateway can relay them untouched) and its joined ``data`` payload (so usage can be read).
"""

from __future__ import annotations

from dataclasses import dataclass

DONE = b"[DONE]"


@dataclass(slots=True)
class SSEEvent:
    raw: bytes  # the event as received, including its terminating blank line
    data: bytes | None  # the joined ``data:`` lines, or None for comment/keep-alive events


class SSEParser:
    """Incremental parser: ``feed`` network chunks, get complete events back."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
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
        return events

    def flush(self) -> list[SSEEvent]:
        """Return a final event left without its blank line when the stream ended."""
        rest, self._buf = self._buf.rstrip(b"\r\n"), b""
        if not rest.strip():
            return []
        return [_parse_event(rest + b"\n\n")]

    @property
    def pending(self) -> bytes:
        return self._buf


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
