"""Secrets kept out of what an upstream sends back (issue 18 #12).

An upstream may quote what it was sent: OpenAI-compatible servers answer a bad key with
"Incorrect API key provided: <key>". Everything the gateway relays, stores or logs from an
upstream passes through a ``Scrubber`` holding the secrets of that call (the deployment's upstream
key, the caller's virtual key), and URLs lose their ``user:password@`` before they are shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"
_REDACTED = REDACTED.encode()
# Shorter "keys" ("x", "EMPTY", "none": what keyless local servers are given) are no secrets, and
# replacing them would corrupt ordinary text.
MIN_SECRET_CHARS = 8


def redact_url(url: str | None) -> str | None:
    """``url`` with its ``user:password@`` part redacted, user too: some providers take the key
    as the user name."""
    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{REDACTED}@{host}", parts.path, parts.query, parts.fragment))


class Scrubber:
    """Replaces known secrets with ``[redacted]`` in bytes and text.

    ``split`` serves streams: a secret may straddle two network chunks, so the end of a chunk
    that could be the start of one waits for the next chunk (never when the chunk ends a line, as
    SSE chunks do: a secret holds no line break)."""

    __slots__ = ("_bytes", "_texts")

    def __init__(self, secrets: Iterable[str | None]) -> None:
        kept = {s for s in secrets if s and len(s) >= MIN_SECRET_CHARS and "\n" not in s}
        self._texts = tuple(sorted(kept, key=len, reverse=True))  # longest first: no partial left
        self._bytes = tuple(s.encode() for s in self._texts)

    def __bool__(self) -> bool:
        return bool(self._texts)

    def clean(self, data: bytes) -> bytes:
        for secret in self._bytes:
            if secret in data:
                data = data.replace(secret, _REDACTED)
        return data

    def clean_text(self, text: str) -> str:
        for secret in self._texts:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def split(self, data: bytes) -> tuple[bytes, bytes]:
        """``data`` scrubbed, cut into what can go now and a tail to put before the next chunk."""
        data = self.clean(data)
        if data.endswith(b"\n"):
            return data, b""
        hold = 0
        for secret in self._bytes:
            for k in range(min(len(secret) - 1, len(data)), hold, -1):
                if data.endswith(secret[:k]):
                    hold = k
                    break
        return (data[:-hold], data[-hold:]) if hold else (data, b"")
