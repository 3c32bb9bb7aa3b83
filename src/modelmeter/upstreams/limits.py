"""What an upstream may send back: ``ResponseLimits``, and ``LimitedResponse``, the wrapper the
relay reads every upstream answer through (issue 18 #1, #7, #12).

A whole answer is gathered chunk by chunk and refused past ``max_response_bytes``, so its memory is
bounded by the limit, not by what the upstream sends; a stream is counted and timed as it passes
(``max_stream_bytes``, ``max_stream_seconds``); one SSE event is bounded by the relay's parser
(``max_event_bytes``, sse.py). The clients inflate gzip/deflate in bounded steps (lean_response.py; aiohttp
does the same since 3.13.3), so the limits count decompressed bytes and a bomb stops at them. Every
byte and error message passes the call's ``Scrubber`` (scrub.py) on its way out.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import TYPE_CHECKING

from modelmeter.sse import MAX_EVENT_BYTES
from modelmeter.upstreams.base import UpstreamError, UpstreamResponse
from modelmeter.upstreams.scrub import Scrubber

if TYPE_CHECKING:
    from modelmeter.config import Deployment

MiB = 1024 * 1024
# UpstreamError kinds of a limit passed; the relay answers them 502 with code "upstream_<kind>".
LIMIT_KINDS = ("response_too_large", "stream_too_large", "stream_too_long", "event_too_large")


@dataclass(frozen=True, slots=True)
class ResponseLimits:
    """Server-wide in ``[server]``; a deployment may override each (None: the server's)."""

    max_response_bytes: int = 64 * MiB  # a whole (non-streamed) answer, decompressed
    max_stream_bytes: int = 256 * MiB  # all a stream sends, decompressed
    max_stream_seconds: float = 3600.0  # a stream's duration (it also ends at the deployment's timeout)
    max_event_bytes: int = MAX_EVENT_BYTES  # one SSE event


LIMIT_FIELDS = tuple(f.name for f in fields(ResponseLimits))


def limits_for(dep: Deployment, server: ResponseLimits) -> ResponseLimits:
    """The server's limits with the deployment's overrides."""
    if (
        dep.max_response_bytes is None
        and dep.max_stream_bytes is None
        and dep.max_stream_seconds is None
        and dep.max_event_bytes is None
    ):
        return server  # the usual case, on every call: no dict, no copy
    over = {name: value for name in LIMIT_FIELDS if (value := getattr(dep, name)) is not None}
    return replace(server, **over)


@lru_cache(maxsize=1024)
def scrubber_for(*secrets: str | None) -> Scrubber | None:
    """The scrubber of these secrets, None when there are none to scrub (cached: the same keys
    call again and again)."""
    scrubber = Scrubber(secrets)
    return scrubber if scrubber else None


class LimitedResponse:
    """An ``UpstreamResponse`` read within ``limits``, with ``scrub``'s secrets replaced."""

    __slots__ = ("_limits", "_resp", "_scrub", "_started", "headers", "status")

    def __init__(self, resp: UpstreamResponse, limits: ResponseLimits, scrub: Scrubber | None = None) -> None:
        self._resp = resp
        self._limits = limits
        self._scrub = scrub
        self._started = time.monotonic()
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read(self) -> bytes:
        limit = self._limits.max_response_bytes
        length = _plain_length(self.headers)
        try:
            if length is not None:  # the client reads no more than a plain Content-Length
                if length > limit:
                    raise _too_large(limit, f" ({length} bytes)")
                data = await self._resp.read()
            else:
                data = await self._gather(limit)
        except UpstreamError as exc:
            raise self._scrubbed(exc) from None
        return self._scrub.clean(data) if self._scrub is not None else data

    async def _gather(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        chunks = self._resp.chunks()
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                await chunks.aclose()  # type: ignore[attr-defined]
                raise _too_large(limit, "")
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        limits, scrub, clock = self._limits, self._scrub, time.monotonic
        left = limits.max_stream_bytes
        deadline = self._started + limits.max_stream_seconds
        held = b""  # the end of a chunk that may be the start of a secret
        chunks = self._resp.chunks()
        try:
            async for chunk in chunks:
                left -= len(chunk)
                if left < 0:
                    raise UpstreamError(
                        "stream_too_large",
                        f"the upstream's stream is larger than max_stream_bytes ({limits.max_stream_bytes} bytes)",
                    )
                if clock() > deadline:
                    raise UpstreamError(
                        "stream_too_long",
                        "the upstream's stream lasted longer than "
                        f"max_stream_seconds ({limits.max_stream_seconds:g} s)",
                    )
                if scrub is not None:
                    chunk, held = scrub.split(held + chunk if held else chunk)
                    if not chunk:
                        continue
                yield chunk
        except UpstreamError as exc:
            await chunks.aclose()  # type: ignore[attr-defined]
            raise self._scrubbed(exc) from None
        if held:
            yield held

    def close(self) -> None:
        self._resp.close()

    def _scrubbed(self, exc: UpstreamError) -> UpstreamError:
        scrub = self._scrub
        return exc if scrub is None else UpstreamError(exc.kind, scrub.clean_text(exc.message))


def _plain_length(headers: Mapping[str, str]) -> int | None:
    """The body's length when Content-Length gives it (not compressed: that counts the bytes on
    the wire, not what they inflate to)."""
    value = headers.get("content-length")
    if value is None or headers.get("content-encoding", "identity").lower() != "identity":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _too_large(limit: int, size: str) -> UpstreamError:
    return UpstreamError(
        "response_too_large", f"the upstream's answer{size} is larger than max_response_bytes ({limit} bytes)"
    )
