"""Upstream limits and scrubbing, piece by piece (issue 18 #1, #7, #12): the lean client's large and
compressed bodies, ``LimitedResponse`` over both clients (lean for http, aiohttp for https), the SSE
parser's event bound, the scrubber, and the config keys. End to end: tests/e2e/test_upstream_limits_e2e.py.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest
from tests.helpers import CannedResponse, MemoryUpstream, UpstreamCall, running_app, sqlite_url

from modelmeter.config import ConfigError, Deployment, load_settings
from modelmeter.sse import EventTooLarge, SSEParser
from modelmeter.upstreams.base import origin
from modelmeter.upstreams.client import HTTPUpstream, LeanHTTP, Timeouts, UpstreamError
from modelmeter.upstreams.limits import LimitedResponse, ResponseLimits, limits_for
from modelmeter.upstreams.scrub import Scrubber, redact_url

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
T = Timeouts(total=5.0, connect=2.0)
MiB = 1024 * 1024
BIG = b'{"data":"' + b"0123456789" * 300_000 + b'"}'  # 3 MB


class Server:
    """A raw HTTP/1.1 server answering every request on a connection with ``answer(n)``."""

    def __init__(self, answer: Callable[[int], bytes]) -> None:
        self.answer = answer
        self.requests = 0
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next(
                        (
                            int(line.split(b":")[1])
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        ),
                        0,
                    )
                    await reader.readexactly(length)
                    self.requests += 1
                    writer.write(self.answer(self.requests))
                    await writer.drain()
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
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/embeddings"


def answer(body: bytes, *, gzipped: bool = False, chunked: bool = False) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    if gzipped:
        head += b"Content-Encoding: gzip\r\n"
    if chunked:
        return head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


async def post(client: LeanHTTP | HTTPUpstream, url: str):  # type: ignore[no-untyped-def]
    if isinstance(client, LeanHTTP):
        return await client.request(b"POST", url, b"{}", {"content-type": "application/json"}, T)
    return await client.post(url, b"{}", {"content-type": "application/json"}, T)


def bomb(size: int) -> bytes:
    z, block = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS), b" " * MiB
    return b"".join(z.compress(block) for _ in range(size // MiB)) + z.flush()


# -- #1: bodies over 1 MiB on the lean client ---------------------------------------------------


async def test_lean_reads_a_body_over_1_mib_whole() -> None:
    """It paused reading above 1 MiB and waited for the end it would never see: a timeout."""
    async with Server(lambda n: answer(BIG)) as server:
        client = LeanHTTP()
        resp = await post(client, server.url)
        assert await asyncio.wait_for(resp.read(), 3.0) == BIG
        client.close()


async def test_a_connection_paused_by_a_full_buffer_is_read_again_when_reused() -> None:
    """A body a little over the high-water mark ends in the read that pauses the socket; the
    connection went back to the pool paused and the next exchange on it hung."""
    body = b'{"d":"' + b"x" * (MiB + 100_000) + b'"}'
    async with Server(lambda n: answer(body if n == 1 else b"{}")) as server:
        client = LeanHTTP()
        resp = await post(client, server.url)
        await asyncio.sleep(0.2)  # the whole body arrives before anyone reads it
        assert b"".join([c async for c in resp.chunks()]) == body
        resp.close()
        second = await post(client, server.url)
        assert await asyncio.wait_for(second.read(), 3.0) == b"{}"
        client.close()
    assert server.connections == 1


async def test_lean_inflates_a_gzip_bomb_only_as_it_is_read() -> None:
    """32 MiB from ~32 KB: each piece handed out is at most about the high-water mark (it was a
    whole network read inflated at once), and it all arrives intact."""
    packed = bomb(32 * MiB)
    async with Server(lambda n: answer(packed, gzipped=True)) as server:
        client = LeanHTTP()
        resp = await post(client, server.url)
        sizes = [len(c) async for c in resp.chunks()]
        client.close()
    assert sum(sizes) == 32 * MiB
    assert max(sizes) <= MiB + 64 * 1024, max(sizes)


async def test_lean_gzip_still_round_trips_and_reports_corruption() -> None:
    body = orjson.dumps({"data": list(range(50_000))})
    broken = b"this is no gzip stream"
    async with Server(lambda n: answer(gzip.compress(body) if n == 1 else broken, gzipped=True)) as server:
        client = LeanHTTP()
        assert await (await post(client, server.url)).read() == body
        with pytest.raises(UpstreamError) as info:
            await (await post(client, server.url)).read()
        client.close()
    assert info.value.kind == "protocol" and "decompress" in info.value.message


# -- LimitedResponse over both clients ---------------------------------------------------------


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "aiohttp"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_limited_read_passes_up_to_the_limit_and_refuses_past_it(lean: bool, chunked: bool) -> None:
    async with Server(lambda n: answer(BIG, chunked=chunked)) as server:
        client = HTTPUpstream(lean=lean)
        ok = LimitedResponse(await post(client, server.url), ResponseLimits(max_response_bytes=len(BIG)))
        assert await asyncio.wait_for(ok.read(), 3.0) == BIG
        ok.close()
        small = LimitedResponse(await post(client, server.url), ResponseLimits(max_response_bytes=MiB))
        with pytest.raises(UpstreamError) as info:
            await asyncio.wait_for(small.read(), 3.0)
        small.close()
        await client.close()
    assert info.value.kind == "response_too_large"
    assert f"max_response_bytes ({MiB} bytes)" in info.value.message


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "aiohttp"])
async def test_a_gzip_bomb_stops_at_max_response_bytes(lean: bool) -> None:
    packed = bomb(256 * MiB)
    async with Server(lambda n: answer(packed, gzipped=True)) as server:
        client = HTTPUpstream(lean=lean)
        resp = LimitedResponse(await post(client, server.url), ResponseLimits(max_response_bytes=4 * MiB))
        with pytest.raises(UpstreamError) as info:
            await asyncio.wait_for(resp.read(), 10.0)
        resp.close()
        await client.close()
    assert info.value.kind == "response_too_large"


async def test_stream_limits_bytes_and_duration() -> None:
    chunks = [b"data: {}\n\n"] * 100
    flood = LimitedResponse(CannedResponse(chunks=chunks), ResponseLimits(max_stream_bytes=500))
    got: list[bytes] = []
    with pytest.raises(UpstreamError) as info:
        async for chunk in flood.chunks():
            got.append(chunk)
    assert info.value.kind == "stream_too_large" and len(got) == 50

    slow = LimitedResponse(CannedResponse(chunks=chunks, delay=0.01), ResponseLimits(max_stream_seconds=0.1))
    with pytest.raises(UpstreamError) as info:
        async for _ in slow.chunks():
            pass
    assert info.value.kind == "stream_too_long" and "0.1 s" in info.value.message


# -- #12: scrubbing ---------------------------------------------------------------------------

KEY = "sk-live-0123456789abcdef"


def test_scrubber_replaces_secrets_and_ignores_short_ones() -> None:
    s = Scrubber([KEY, "x", None, "EMPTY"])
    assert s.clean(f"bad key: Bearer {KEY}.".encode()) == b"bad key: Bearer [redacted]."
    assert s.clean_text(f"{KEY}{KEY}") == "[redacted][redacted]"
    assert s.clean(b"x EMPTY") == b"x EMPTY"
    assert not Scrubber(["short", None])


async def test_a_secret_split_across_stream_chunks_is_scrubbed() -> None:
    text = f'data: {{"error": "key {KEY} refused"}}\n\n'.encode()
    for cut in range(1, len(text)):
        resp = LimitedResponse(CannedResponse(chunks=[text[:cut], text[cut:]]), ResponseLimits(), Scrubber([KEY]))
        out = b"".join([c async for c in resp.chunks()])
        assert out == text.replace(KEY.encode(), b"[redacted]"), cut


async def test_an_errors_text_is_scrubbed() -> None:
    failing = CannedResponse(body=b"{}", error=UpstreamError("protocol", f"broke: {KEY}"))
    with pytest.raises(UpstreamError) as info:
        await LimitedResponse(failing, ResponseLimits(), Scrubber([KEY])).read()
    assert KEY not in info.value.message and "[redacted]" in info.value.message


def test_url_credentials_are_redacted() -> None:
    assert redact_url("https://user:pw@host:8443/v1?x=1") == "https://[redacted]@host:8443/v1?x=1"
    assert redact_url("https://KEY@host/v1") == "https://[redacted]@host/v1"
    assert redact_url("http://host/v1") == "http://host/v1" and redact_url(None) is None
    assert origin("https://user:pw@host:8443/v1/chat") == "https://host:8443"
    dep = Deployment.from_mapping({"name": "d", "api_base": "https://user:pw@host/v1"})
    assert dep.public()["api_base"] == "https://[redacted]@host/v1"


async def test_a_virtual_key_the_upstream_sends_back_is_scrubbed(tmp_path: Path) -> None:
    """The upstream never gets the caller's key, but may quote a body that holds it."""

    def echo(call: UpstreamCall) -> CannedResponse:
        return CannedResponse(400, {"error": {"message": f"bad user {call.body['user']}", "type": "x"}})

    deps = [{"name": "gpt", "model": "gpt-4o-mini", "api_base": "http://upstream.test/v1"}]
    async with running_app(sqlite_url(tmp_path / "vk.db"), deps, MemoryUpstream(echo), require_keys=True) as h:
        key, _ = h.app.state.keys.create("team")
        res = await h.chat(
            {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "user": key},
            headers={"authorization": f"Bearer {key}"},
        )
        rec = await h.record()
    assert res.status == 400 and key not in res.body.decode()
    assert res.json()["error"]["message"] == "bad user [redacted]"
    assert key not in (rec["error"] or "") and key not in orjson.dumps(rec["response"]).decode()


# -- #7: the SSE parser's bound -----------------------------------------------------------------


def test_an_event_past_max_event_bytes_raises() -> None:
    parser = SSEParser(max_event_bytes=100_000)
    events = parser.feed(b"data: 1\n\ndata: ")
    assert [e.data for e in events] == [b"1"]
    with pytest.raises(EventTooLarge, match="100000 bytes"):
        for _ in range(100):
            parser.feed(b"x" * 4096)


def test_a_large_event_in_many_chunks_is_whole_and_linear() -> None:
    parser = SSEParser()
    pieces = [b"data: "] + [b"y" * 4096] * 1000 + [b"\n", b"\n"]
    events = [e for p in pieces for e in parser.feed(p)]
    assert len(events) == 1 and events[0].data == b"y" * 4096 * 1000
    assert parser.pending == b""


# -- config ----------------------------------------------------------------------------------


def test_limits_from_server_and_deployment(tmp_path: Path) -> None:
    cfg = tmp_path / "mm.toml"
    cfg.write_text(
        '[server]\nmax_response_bytes = 1000\nmax_stream_seconds = "2m"\n\n'
        '[[deployments]]\nname = "a"\napi_base = "http://h/v1"\nmax_response_bytes = 5000\n'
        "max_event_bytes = 300\n"
    )
    settings = load_settings(cfg)
    server = ResponseLimits(
        settings.max_response_bytes, settings.max_stream_bytes, settings.max_stream_seconds, settings.max_event_bytes
    )
    assert server == ResponseLimits(1000, 256 * MiB, 120.0, 8 * MiB)
    assert limits_for(settings.deployments[0], server) == ResponseLimits(5000, 256 * MiB, 120.0, 300)
    for bad in (
        "max_response_bytes = 0",
        "max_stream_bytes = -1",
        "max_event_bytes = 1.5",
        'max_stream_seconds = "soon"',
        "max_response_bytes = true",
    ):
        cfg.write_text(f"[server]\n{bad}\n")
        with pytest.raises(ConfigError):
            load_settings(cfg)
        with pytest.raises(ConfigError):
            Deployment.from_mapping({"name": "a", "api_base": "http://h/v1", **_toml_pair(bad)})


def _toml_pair(line: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(line)
