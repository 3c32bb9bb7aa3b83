"""``LeanHTTP``: pooled keep-alive HTTP/1.1 connections on asyncio protocols with httptools' parser
(the one uvicorn uses), for the hot path's POSTs to plain-HTTP upstreams.

Measured with benchmarks/overhead.py (docs/performance.md): ~19 µs of CPU per request where
aiohttp's client took ~65 µs on the same loop, the largest single cost left on the hot path
(4,117 -> 5,559-5,917 JSON requests/s on one core).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as _ssl
import time
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httptools

from modelmeter.upstreams.base import Timeouts, UpstreamError
from modelmeter.upstreams.base import origin as _origin
from modelmeter.upstreams.lean_response import Failure, LeanResponse

_KEEPALIVE_S = 15.0  # an idle pooled connection older than this is closed rather than reused
_ACCEPT_ENCODING = b"Accept-Encoding: gzip, deflate\r\n"  # as aiohttp asked, so upstreams see the same
_Key = tuple[str, str, int]  # scheme, host, port


class LeanConnection(asyncio.Protocol):
    """One keep-alive connection to an upstream; one exchange at a time."""

    def __init__(self, pool: LeanHTTP, key: _Key) -> None:
        self._pool = pool
        self.generation = pool.generation
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.resp: LeanResponse | None = None
        self.parser: Any = None
        self.closed = False
        self.paused = False  # reading paused: the response's buffer is full
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.parser is None:  # bytes nobody asked for: this connection cannot be trusted again
            self.abort()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Failure("protocol", f"invalid HTTP response: {exc}"))
            self.abort()

    def eof_received(self) -> bool | None:
        self.closed = True
        resp = self.resp
        if resp is not None and resp.head_done and not resp.length_known:
            self.resp = self.parser = None  # a body delimited by the end of the connection
            resp.finish()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.resp is not None:
            self._fail(Failure("closed", "Server disconnected"))
        self._pool.forget(self)

    def _fail(self, failure: Failure) -> None:
        resp, self.resp, self.parser = self.resp, None, None
        if resp is not None:
            resp.fail(failure)

    # httptools' callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.resp.raw_headers.append((name.decode("latin-1"), value.decode("latin-1")))  # type: ignore[union-attr]

    def on_headers_complete(self) -> None:
        self.resp.head(self.parser.get_status_code(), self.parser.should_keep_alive())  # type: ignore[union-attr]

    def on_body(self, body: bytes) -> None:
        self.resp.data(body)  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        resp, self.resp, self.parser = self.resp, None, None
        if resp is None:
            return
        keep = resp.keep_alive and not self.closed
        resp.finish()
        if keep:
            self.resume()  # the next exchange on this connection must be read
            self._pool.release(self)
        else:
            self.abort()

    def send(self, resp: LeanResponse, request: bytes) -> None:
        self.resp = resp
        resp.conn = self
        self.parser = httptools.HttpResponseParser(self)
        self.transport.write(request)  # type: ignore[union-attr]

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        """Drop the exchange in progress: the connection is closed, never reused."""
        self.resp = self.parser = None
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class LeanHTTP:
    """Pooled keep-alive HTTP/1.1 connections (http and https) for the gateway's upstream calls.

    Deliberately small: one request per connection at a time, bodies by length, chunked or to the
    end of the connection, gzip/deflate decoded, no redirects followed, no cookies kept. The total
    timeout covers the whole exchange (like aiohttp's ``ClientTimeout.total``), the connect timeout
    the opening of a new connection. At most ``limit`` connections are open; callers past it wait.
    """

    def __init__(self, limit: int = 1000) -> None:
        self._limit = limit
        self._open = 0
        self._idle: dict[_Key, list[LeanConnection]] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._targets: dict[str, tuple[_Key, bytes, str]] = {}
        self._ssl: _ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.generation = 0

    def _target(self, url: str) -> tuple[_Key, bytes, str]:
        """(pool key, request-target line and Host header, origin for messages), cached per URL."""
        target = self._targets.get(url)
        if target is None:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme not in ("http", "https") or not parts.hostname:
                raise UpstreamError("connect", f"cannot reach the upstream at {_origin(url)}: not an http(s) URL")
            host = parts.netloc.rsplit("@", 1)[-1]
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            key = (scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80))
            target = (key, f" {path} HTTP/1.1\r\nHost: {host}\r\n".encode("latin-1"), f"{scheme}://{host}")
            if len(self._targets) < 4096:
                self._targets[url] = target
        return target

    # -- the pool
    def release(self, conn: LeanConnection) -> None:
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)
        self._wake_one()

    def forget(self, conn: LeanConnection) -> None:
        if conn.generation != self.generation:
            return  # a connection of an earlier event loop, already written off
        self._open -= 1
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _reset_if_new_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            if self._loop is not None:
                self.close()
            self.generation += 1
            self._loop = loop
            self._open = 0
            self._waiters.clear()

    async def _connection(self, key: _Key, origin: str, connect_timeout: float) -> LeanConnection:
        while True:
            idle = self._idle.get(key)
            if idle:
                now = time.monotonic()
                while idle:
                    conn = idle.pop()
                    if not conn.closed and now - conn.idle_since < _KEEPALIVE_S:
                        return conn
                    conn.abort()
            if self._open < self._limit:
                break
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self._open += 1
        scheme, host, port = key
        conn = LeanConnection(self, key)
        ssl: _ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = _ssl.create_default_context()
            ssl = self._ssl
        try:
            async with asyncio.timeout(connect_timeout):
                await asyncio.get_running_loop().create_connection(
                    lambda: conn, host, port, ssl=ssl, server_hostname=host if ssl else None
                )
        except BaseException as exc:
            self._open -= 1
            self._wake_one()
            if isinstance(exc, TimeoutError):  # no connection: the request never reached the upstream
                raise UpstreamError("connect", f"the upstream at {origin} did not accept a connection in time") from exc
            if isinstance(exc, OSError):
                raise UpstreamError("connect", f"cannot reach the upstream at {origin}: {exc.strerror or exc}") from exc
            raise
        return conn

    async def request(
        self, method: bytes, url: str, body: bytes | None, headers: Mapping[str, str], timeouts: Timeouts
    ) -> LeanResponse:
        self._reset_if_new_loop()
        loop = self._loop
        assert loop is not None
        key, target, origin = self._target(url)
        head = [method, target, _ACCEPT_ENCODING]
        head.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers.items())
        if body is not None:
            head.append(b"Content-Length: %d\r\n\r\n" % len(body))
            head.append(body)
        else:
            head.append(b"\r\n")
        request = b"".join(head)
        deadline = loop.time() + timeouts.total
        stale_retry = True
        while True:
            resp = LeanResponse(origin)
            resp.timer = loop.call_at(deadline, resp.expire)
            try:
                conn = await self._connection(key, origin, min(timeouts.connect, timeouts.total))
            except BaseException:
                resp.close()
                raise
            if resp.done:  # the total timeout passed while connecting
                conn.abort()
                raise UpstreamError("timeout", f"the upstream at {origin} did not answer in time")
            conn.send(resp, request)
            failure = await resp.wait_head()
            if failure is None:
                return resp
            if failure.kind == "timeout":
                raise UpstreamError("timeout", f"the upstream at {origin} did not answer in time")
            if failure.kind == "closed":
                # A pooled keep-alive connection the upstream had already closed (llama.cpp's
                # server does this after a stream): nothing was answered, so send it once more
                # on a fresh connection (as the aiohttp path does).
                if stale_retry:
                    stale_retry = False
                    continue
                raise UpstreamError(
                    "protocol", f"the upstream at {origin} closed the connection: ServerDisconnectedError"
                )
            raise UpstreamError("protocol", f"the upstream at {origin} failed: {failure.detail}")

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                with contextlib.suppress(Exception):  # its loop may be closed already
                    conn.abort()
        self._idle.clear()
