"""``LeanResponse``: one upstream response of the lean client (lean.py) as it arrives, and why an
exchange broke (``Failure``).

At most about ``HIGH_WATER`` bytes wait for the reader: past it the socket is paused until the
reader takes them, and compressed bytes wait compressed (inflated ``INFLATE_STEP`` at a time as
the reader takes them), so neither a large body nor a gzip bomb fills memory here (issue 18 #1, #7).
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict, CIMultiDictProxy

from modelmeter.upstreams.base import UpstreamError

if TYPE_CHECKING:
    from modelmeter.upstreams.lean import LeanConnection

HIGH_WATER = 1 << 20  # buffered response bytes past which the socket stops being read
INFLATE_STEP = 1 << 16  # gzip/deflate output per step: a bomb inflates only as it is read


class Failure(Exception):
    """Why an exchange broke (``timeout``, ``closed`` or ``protocol``); worded by the phase it
    broke in."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class LeanResponse:
    """An upstream response as it arrives: status and headers, then the body (``read`` or
    ``chunks``). The connection goes back to the pool as soon as the body is complete."""

    __slots__ = (
        "body",
        "buffered",
        "compressed",
        "conn",
        "decoder",
        "done",
        "failure",
        "head_done",
        "headers",
        "inflating",
        "keep_alive",
        "length_known",
        "origin",
        "raw_headers",
        "status",
        "timer",
        "waiter",
    )

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.status = 0
        self.headers: Mapping[str, str] = _NO_HEADERS
        self.raw_headers: list[tuple[str, str]] = []
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.conn: LeanConnection | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.head_done = False
        self.done = False
        self.failure: Failure | None = None
        self.keep_alive = False
        self.length_known = True
        self.decoder: Any = None
        self.compressed = b""  # received, not inflated yet
        self.inflating = False  # the decoder may have more to give
        self.timer: asyncio.TimerHandle | None = None

    # -- fed by the connection
    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def head(self, status: int, keep_alive: bool) -> None:
        headers = CIMultiDict(self.raw_headers)
        self.status = status
        self.headers = CIMultiDictProxy(headers)
        self.keep_alive = keep_alive
        self.length_known = (
            "content-length" in headers
            or "chunked" in headers.get("transfer-encoding", "").lower()
            or status in (204, 304)
            or 100 <= status < 200
        )
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "x-gzip"):
            self.decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.decoder = zlib.decompressobj()
        self.head_done = True
        self._wake()

    def data(self, data: bytes) -> None:
        if self.decoder is not None:
            self.compressed = self.compressed + data if self.compressed else data
            self.inflating = True
            self._inflate()
            if not self.body:
                return
        else:
            self.body.append(data)
            self.buffered += len(data)
        if (self.buffered > HIGH_WATER or self.compressed) and self.conn is not None:
            self.conn.pause()
        self._wake()

    def _inflate(self) -> None:
        """Inflate what waits compressed until the buffer is past the high-water mark."""
        decoder = self.decoder
        while self.inflating and self.buffered <= HIGH_WATER:
            try:
                out = decoder.decompress(self.compressed, INFLATE_STEP)
            except zlib.error as exc:
                conn = self.conn
                self.compressed, self.inflating = b"", False
                self.failure = Failure("protocol", f"cannot decompress the body: {exc}")
                self._settle()  # also when the body was complete: it is not whole
                if conn is not None:
                    conn.abort()
                return
            self.compressed = decoder.unconsumed_tail
            # A full step may leave output inside the decoder with no input left: ask again.
            self.inflating = bool(self.compressed) or len(out) == INFLATE_STEP
            if out:
                self.body.append(out)
                self.buffered += len(out)

    def finish(self) -> None:
        if self.decoder is not None and not self.inflating:
            with _suppress_zlib():
                rest = self.decoder.flush()
                if rest:
                    self.body.append(rest)
        self._settle()

    def _take(self) -> bytes | None:
        """All that waits for the reader (inflating more first if it waits compressed), or None;
        the socket is read again once nothing waits."""
        if not self.body and self.inflating:
            self._inflate()
        body = self.body
        if not body:
            return None
        data = body.popleft() if len(body) == 1 else b"".join(body)
        body.clear()
        self.buffered = 0
        if not self.compressed and self.conn is not None:
            self.conn.resume()
        return data

    @property
    def drained(self) -> bool:
        """Done, and nothing left to read."""
        return self.done and not self.body and not self.inflating

    def fail(self, failure: Failure) -> None:
        if not self.done:
            self.failure = failure
            self._settle()

    def _settle(self) -> None:
        self.done = True
        self.conn = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._wake()

    def expire(self) -> None:
        """The whole exchange took longer than its total timeout."""
        self.timer = None
        conn = self.conn
        self.fail(Failure("timeout", "timed out"))
        if conn is not None:
            conn.abort()

    async def _wait(self) -> None:
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        except asyncio.CancelledError:  # the client hung up: this exchange is abandoned
            self.close()
            raise

    async def wait_head(self) -> Failure | None:
        """None once the status and headers are in; else why they will never come."""
        while not self.head_done and not self.done:
            await self._wait()
        if self.head_done:
            return None
        return self.failure or Failure("closed", "Server disconnected")

    # -- the UpstreamResponse interface
    async def read(self) -> bytes:
        """The whole body (unbounded: the gateway reads through ``limits.LimitedResponse``)."""
        parts: list[bytes] = []
        while not self.drained:
            if self.buffered > HIGH_WATER or self.inflating:  # else the socket stays paused
                data = self._take()
                if data is not None:
                    parts.append(data)
                    continue
            if self.done:
                break
            await self._wait()
        if self.failure is not None:
            if self.failure.kind == "timeout":
                raise UpstreamError("timeout", "the upstream timed out while sending its response")
            raise UpstreamError("protocol", f"the upstream broke off its response: {self.failure.detail}")
        parts.extend(self.body)
        self.body.clear()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            data = self._take()
            if data is not None:
                yield data
            elif self.done:
                if self.failure is None:
                    return
                if self.failure.kind == "timeout":
                    raise UpstreamError("timeout", "the upstream timed out mid-stream")
                raise UpstreamError("protocol", f"the upstream broke off the stream: {self.failure.detail}")
            else:
                await self._wait()

    def close(self) -> None:
        """Done with this response: if its body is not complete, the connection is closed."""
        if not self.done:
            conn = self.conn
            self._settle()
            if conn is not None:
                conn.abort()


_NO_HEADERS: Mapping[str, str] = CIMultiDictProxy(CIMultiDict())


class _suppress_zlib:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], zlib.error)  # type: ignore[arg-type]
