"""The lean pooled HTTP/1.1 client of the hot path (``LeanHTTP``), against small raw servers."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import pytest

from modelmeter.upstreams.client import HTTPUpstream, LeanHTTP, Timeouts, UpstreamError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
T = Timeouts(total=5.0, connect=2.0)


class RawServer:
    """A TCP server running ``handler`` per connection; counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat/completions"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body


def keepalive(server: RawServer, responses: list[bytes]) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(responses[min(len(server.requests), len(responses)) - 1])
            await writer.drain()

    return handler


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


async def post(client: LeanHTTP, url: str, body: bytes = b'{"a":1}', timeouts: Timeouts = T):
    return await client.request(b"POST", url, body, {"content-type": "application/json"}, timeouts)


async def test_request_line_headers_and_body_and_keepalive_reuse() -> None:
    server = RawServer(None)  # type: ignore[arg-type]
    server.handler = keepalive(server, [ok(b'{"x":1}', b"X-Test: yes\r\n")])
    async with server:
        client = LeanHTTP()
        for _ in range(3):
            resp = await post(client, server.url)
            assert resp.status == 200
            assert resp.headers["x-test"] == "yes" and resp.headers["Content-Type"] == "application/json"
            assert await resp.read() == b'{"x":1}'
            resp.close()
        client.close()
    assert server.connections == 1  # one pooled connection for all three
    head = server.requests[0]
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"content-type: application/json\r\n" in head and b"Content-Length: 7\r\n" in head
    assert head.endswith(b'\r\n\r\n{"a":1}')


async def test_chunked_stream_arrives_piece_by_piece() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(3):
            event = b"data: %d\n\n" % i
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()  # keep-alive: wait for the client

    server = RawServer(handler)
    async with server:
        client = LeanHTTP()
        resp = await post(client, server.url)
        pieces = [chunk async for chunk in resp.chunks()]
        assert b"".join(pieces) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
        assert len(pieces) == 3  # as they came, not all at the end
        client.close()


async def test_body_to_the_end_of_the_connection_and_gzip() -> None:
    packed = gzip.compress(b'{"long":"' + b"x" * 5000 + b'"}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n" + packed)
        await writer.drain()

    server = RawServer(handler)
    async with server:
        client = LeanHTTP()
        resp = await post(client, server.url)
        assert await resp.read() == b'{"long":"' + b"x" * 5000 + b'"}'
        client.close()
    assert b"Accept-Encoding: gzip, deflate\r\n" in server.requests[0]


async def test_stale_pooled_connection_is_sent_again_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(ok(b"{}"))  # keep-alive by default ...
        await writer.drain()
        if server.connections == 1:
            await server.read_request(reader)  # ... but the next request is dropped unanswered
            return
        while True:
            await server.read_request(reader)
            writer.write(ok(b"{}"))
            await writer.drain()

    server = RawServer(handler)
    async with server:
        client = LeanHTTP()
        assert await (await post(client, server.url)).read() == b"{}"
        assert await (await post(client, server.url)).read() == b"{}"
        client.close()
    assert server.connections == 2 and len(server.requests) == 3


async def test_errors_are_worded_like_the_aiohttp_path() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await reader.read()  # never answers; returns when the client gives up

    server = RawServer(silent)
    async with server:
        url = server.url
        client = LeanHTTP()
        with pytest.raises(UpstreamError) as info:
            await post(client, server.url, timeouts=Timeouts(total=0.2, connect=1.0))
        assert info.value.kind == "timeout" and "did not answer in time" in info.value.message
        client.close()
    client = LeanHTTP()
    with pytest.raises(UpstreamError) as info:
        await post(client, url)  # the server is gone now
    assert info.value.kind == "connect" and info.value.message.startswith(
        "cannot reach the upstream at http://127.0.0.1:"
    )

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server2.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    server2 = RawServer(cut)
    async with server2:
        resp = await post(client, server2.url)
        with pytest.raises(UpstreamError) as info:
            await resp.read()
        assert info.value.kind == "protocol" and "broke off its response" in info.value.message
        resp = await post(client, server2.url)
        with pytest.raises(UpstreamError) as info:
            _ = [c async for c in resp.chunks()]
        assert info.value.kind == "protocol" and "broke off the stream" in info.value.message
    client.close()


async def test_cancelled_exchange_closes_its_connection_and_limit_makes_callers_wait() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            await release.wait()
            writer.write(ok(b"{}"))
            await writer.drain()

    server = RawServer(handler)
    async with server:
        client = LeanHTTP(limit=1)
        first = asyncio.create_task(post(client, server.url))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(post(client, server.url))
        await asyncio.sleep(0.05)
        assert server.connections == 1  # the second waits for the only connection
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.sleep(0.05)
        release.set()
        resp = await asyncio.wait_for(second, 2)
        assert await resp.read() == b"{}"
        assert server.connections == 2  # the cancelled exchange's connection was not reused
        client.close()


async def test_the_gateway_client_posts_through_it() -> None:
    server = RawServer(None)  # type: ignore[arg-type]
    server.handler = keepalive(server, [ok(b'{"y":2}')])
    async with server:
        upstream = HTTPUpstream()
        resp = await upstream.post(server.url, b"{}", {"content-type": "application/json"}, T)
        assert await resp.read() == b'{"y":2}'
        resp.close()
        await upstream.close()
