"""A fake OpenAI-compatible upstream for tests: deterministic answers, known timings, misbehaviours.

``python -m tests.fakes.upstream --host 127.0.0.1 --port 0 --port-file PATH`` or ``FakeUpstream``.
Replies ``"tok0 tok1 … tok{N-1}"`` (N = ``max_tokens`` else 7); timing from env ``FAKE_TTFT_MS``,
``FAKE_ITL_MS`` or headers ``x-fake-ttft-ms``, ``x-fake-itl-ms``; ``model`` picks misbehaviours.
``FAKE_ANSWER_AS="asked=answered,…"`` answers with another model id; ``FAKE_UPSTREAM_HEADERS=1`` adds
OpenAI's response headers (``x-request-id``, rate limits, …); ``"logprobs": true`` gets logprobs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.util
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections import Counter, deque
from collections.abc import Awaitable
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.doors import Doors

DEFAULT_TOKENS = 7
EMBED_DIM = 384
SLOW_STREAM_ITL_S = 0.3
CUT_AFTER_CHUNKS = 3
LOG_SIZE = 1000  # requests kept for GET /_log
FINGERPRINT = "fp_fake_modelmeter"
_MODES = ("reset", "hang", "fail-500", "fail-400", "fail-402", "rate-limited", "malformed", "slow-stream")
_MODES += ("cut-stream", "no-usage", "no-done")  # no-done: a complete stream without [DONE]
_MODES += ("tool-call",)  # with "tools" in the request: the answer calls the first one (TOOL_ARGS)
TOOL_ARGS = '{"city": "Paris"}'
# Hostile upstreams (tests/e2e/test_upstream_limits_e2e.py): see ``_hostile``.
_HOSTILE = ("sse-no-blank", "endless-stream", "gzip-bomb", "echo-key")
_MODES += _HOSTILE
HOSTILE_CAP_S = 60.0  # an endless answer still ends, so a broken test cannot hang forever
BOMB_BYTES = 256 * 1024 * 1024  # what the gzip bomb inflates to (~250 KB on the wire)
DEFAULT_MODELS = "fake-model,fake-cached,fake-reasoning,flaky-2," + ",".join(_MODES)
_ERRORS: dict[str, tuple[str, int, str, str | None]] = {  # message, status, type, code
    "fail-500": ("The server had an error processing your request.", 500, "server_error", None),
    "fail-400": ("Invalid request (fail-400).", 400, "invalid_request_error", "invalid_value"),
    "fail-402": ("You exceeded your current quota.", 402, "insufficient_quota", "insufficient_quota"),
    "rate-limited": ("Rate limit reached, retry in 1s.", 429, "requests", "rate_limit_exceeded"),
    "flaky": ("The engine is currently overloaded.", 503, "server_error", "service_unavailable"),
}
_JSON = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_DONE = b"data: [DONE]\n\n"
_ZEROS = {"audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
_EMBED_TABLE = tuple(map(random.Random(384).gauss, [0.0] * 8192, [1.0] * 8192))


@lru_cache(maxsize=4096)
def mode_of(model: str) -> tuple[frozenset[str], int]:
    """Flags named in ``model`` as words (``cached`` / ``reasoning`` / ``cachewrite`` anywhere), N of
    ``flaky-N``."""
    m = model.lower()
    flags = {f for f in _MODES if re.search(rf"(?:^|[^a-z0-9]){f}(?![a-z0-9])", m)}
    flags.update(f for f in ("cached", "reasoning", "cachewrite") if f in m)
    flaky = re.search(r"(?:^|[^a-z0-9])flaky-(\d+)(?![0-9])", m)
    return frozenset(flags), int(flaky.group(1)) if flaky else 0


def _count(x: Any) -> int:
    """Deterministic token count: whitespace words of strings, 1 per integer token id."""
    if isinstance(x, str):
        return len(x.split())
    if isinstance(x, list):
        return sum(_count(p) for p in x)
    if isinstance(x, dict):  # a content part {"type": "text", "text": ...}
        return _count(x.get("text"))
    return 1 if isinstance(x, int) and not isinstance(x, bool) else 0


def _usage(p: int, c: int, flags: frozenset[str]) -> dict[str, Any]:
    cached, reasoning = p // 2 if "cached" in flags else 0, 2 if "reasoning" in flags else 0
    usage: dict[str, Any] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    if "cachewrite" in flags:  # a quarter of the prompt written to the provider's cache
        usage["prompt_tokens_details"]["cache_creation_tokens"] = p // 4
    usage["completion_tokens_details"] = {"reasoning_tokens": reasoning, **_ZEROS}
    return usage


@lru_cache(maxsize=4096)
def _embedding(key: str | bytes, dims: int) -> tuple[list[float], str]:
    """A unit float32 vector derived from ``key``: as floats, and as base64 of little-endian f32."""
    off = zlib.crc32(key.encode() if isinstance(key, str) else key) % (len(_EMBED_TABLE) - dims)
    raw = _EMBED_TABLE[off : off + dims]
    norm = sum(v * v for v in raw) ** 0.5
    packed = struct.pack(f"<{dims}f", *(v / norm for v in raw))
    return list(struct.unpack(f"<{dims}f", packed)), base64.b64encode(packed).decode()


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _error(msg: str, status: int = 400, kind: str = "invalid_request_error", code=None, param=None):
    body = {"error": {"message": msg, "type": kind, "param": param, "code": code}}
    headers = {"Retry-After": "1"} if status == 429 else None
    return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON, headers=headers)


def _logprob(i: int) -> dict[str, Any]:
    token = f"{' ' if i else ''}tok{i}"
    return {
        "token": token,
        "logprob": -0.125 * (i + 1),
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": token, "logprob": -0.125 * (i + 1), "bytes": list(token.encode())}],
    }


async def _openai_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """The response headers OpenAI sends (FAKE_UPSTREAM_HEADERS=1), and one no gateway should pass."""
    response.headers.update(
        {
            "x-request-id": f"req_{random.getrandbits(96):024x}",
            "openai-processing-ms": "12",
            "openai-version": "2020-10-01",
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "openai-organization": "org-fake-secret",
            "set-cookie": "__cf_bm=fake; path=/",
        }
    )


def _ms(value: str | None, default: float) -> float:
    try:
        return default if value is None else max(float(value), 0.0) / 1000.0
    except ValueError:
        return default


def _drop(request: web.BaseRequest, *, rst: bool) -> None:
    """Close the client connection: FIN after flushing what was written, or at once with a RST."""
    if (transport := request.transport) is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        if rst:  # SO_LINGER 0: close() then sends a RST
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort() if rst else transport.close()


def _sleep_until(deadline: float) -> Awaitable[None]:
    return asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))


class FakeServer:
    """The handlers, and the counters behind ``/_stats``."""

    def __init__(self) -> None:
        env = os.environ
        self.ttft, self.itl = _ms(env.get("FAKE_TTFT_MS"), 0.0), _ms(env.get("FAKE_ITL_MS"), 0.0)
        names = [m.strip() for m in env.get("FAKE_MODELS", DEFAULT_MODELS).split(",")]
        card = {"object": "model", "created": 1_700_000_000, "owned_by": "fake"}
        data = [{"id": m, **card} for m in names if m]
        self.models_body = orjson.dumps({"object": "list", "data": data})
        pairs = [p.split("=", 1) for p in env.get("FAKE_ANSWER_AS", "").split(",") if "=" in p]
        self.answer_as = {a.strip(): b.strip() for a, b in pairs}
        self.openai_headers = env.get("FAKE_UPSTREAM_HEADERS") == "1"
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.per_model: Counter[str] = Counter()
        self.last_by_path: dict[str, dict[str, Any]] = {}
        self.last: dict[str, Any] | None = None
        self.disconnects: Counter[str] = Counter()  # streams the client closed before their end
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)  # every request, oldest first

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.generate)
        app.router.add_post("/v1/completions", self.generate)
        app.router.add_post("/v1/embeddings", self.embeddings)
        Doors(self).add_routes(app)  # /v1/messages*, /v1/responses* (tests/fakes/doors.py)
        app.router.add_get("/_stats", self.stats)
        app.router.add_post("/_reset", self.stats)
        app.router.add_get("/_log", self.request_log)
        app.router.add_route("*", "/{tail:.*}", self.unknown)  # last: logged, then a 404
        if self.openai_headers:
            app.on_response_prepare.append(_openai_headers)
        return app

    def _record(self, request: web.Request, body: Any) -> None:
        self.requests[request.path] += 1
        entry = dict(method=request.method, path=request.path, body=body, headers=request.headers)
        self.last = self.last_by_path[request.path] = entry
        self.log.append({**entry, "query": request.query_string, "headers": _lower(request.headers)})

    async def unknown(self, request: web.Request) -> web.Response:
        self._record(request, (await request.read()).decode(errors="replace") or None)
        return _error(f"Unknown path {request.path}.", 404)

    async def request_log(self, request: web.Request) -> web.Response:
        """``GET /_log``: the newest requests (``LOG_SIZE``), oldest first: method, path, query,
        headers (lower-cased names), body."""
        return web.Response(body=orjson.dumps(list(self.log)), content_type=_JSON)

    async def models(self, request: web.Request) -> web.Response:
        self._record(request, None)
        return web.Response(body=self.models_body, content_type=_JSON)

    async def stats(self, request: web.Request) -> web.Response:
        """``GET /_stats``; ``POST /_reset`` clears the counters first."""
        if request.method == "POST":
            self.reset()

        def entry(e: dict[str, Any] | None) -> dict[str, Any] | None:
            return e and {**e, "headers": _lower(e["headers"])}

        stats: dict[str, Any] = {"total": self.requests.total(), "requests": self.requests}
        stats.update(models=self.per_model, last=entry(self.last))
        stats["last_by_path"] = {p: entry(e) for p, e in self.last_by_path.items()}
        stats["config"] = {"ttft_ms": self.ttft * 1000, "itl_ms": self.itl * 1000}
        stats["disconnects"] = self.disconnects
        return web.Response(body=orjson.dumps(stats), content_type=_JSON)

    async def _begin(self, request: web.Request) -> tuple[dict, frozenset, float] | web.Response:
        """Parse and record the request; answer now if its model says to misbehave."""
        t0, raw = asyncio.get_running_loop().time(), await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._record(request, raw.decode(errors="replace"))
            return _error("We could not parse the JSON body of your request.")
        self._record(request, body)
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str) or not model:
            return _error("You must provide a model parameter.", param="model")
        self.per_model[model] += 1
        flags, flaky = mode_of(model)
        if "reset" in flags:
            _drop(request, rst=True)
            return web.Response()  # never reaches the client: aiohttp's writes fail quietly
        if "hang" in flags:
            await asyncio.sleep(3600)
        for flag in ("fail-500", "fail-400", "fail-402", "rate-limited"):
            if flag in flags:
                return _error(*_ERRORS[flag])
        if self.per_model[model] <= flaky:
            return _error(*_ERRORS["flaky"])
        if hostile := flags.intersection(_HOSTILE):
            return await _hostile(request, min(hostile), body)
        if "malformed" in flags and body.get("stream"):
            return web.Response(body=b'data: {"not json\n\n' + _DONE, headers=_SSE_HEADERS)
        if "malformed" in flags:
            return web.Response(body=b'{"not json', content_type=_JSON)
        return body, flags, t0

    def _timing(self, request: web.Request, flags: frozenset[str]) -> tuple[float, float]:
        ttft = _ms(request.headers.get("x-fake-ttft-ms"), self.ttft)
        itl = _ms(request.headers.get("x-fake-itl-ms"), self.itl)
        return ttft, SLOW_STREAM_ITL_S if "slow-stream" in flags else itl

    @staticmethod
    async def _json(request: web.Request, obj: dict, flags: frozenset[str]) -> web.StreamResponse:
        body = orjson.dumps(obj)
        if "cut-stream" not in flags:
            return web.Response(body=body, content_type=_JSON)
        resp = web.StreamResponse(headers={"Content-Type": _JSON})  # half the body, then FIN
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[: len(body) // 2])
        _drop(request, rst=False)
        return resp

    async def generate(self, request: web.Request) -> web.StreamResponse:
        """``/v1/chat/completions`` and ``/v1/completions``."""
        chat = request.path.endswith("chat/completions")
        begun = await self._begin(request)
        if isinstance(begun, web.StreamResponse):
            return begun
        body, flags, t0 = begun
        limit = body.get("max_tokens", body.get("max_completion_tokens"))
        if limit is not None and (type(limit) is not int or limit < 0):
            return _error("max_tokens must be a non-negative integer.", param="max_tokens")
        n, finish = (DEFAULT_TOKENS, "stop") if limit is None else (limit, "length")
        if chat:
            msgs = body.get("messages") if isinstance(body.get("messages"), list) else []
            prompt = sum(3 + _count(m.get("content") if isinstance(m, dict) else m) for m in msgs)
        else:
            prompt = _count(body.get("prompt"))
        usage = None if "no-usage" in flags else _usage(prompt, n, flags)
        ttft, itl = self._timing(request, flags)
        oid = f"{'chatcmpl' if chat else 'cmpl'}-{random.getrandbits(96):024x}"
        kind = "chat.completion" if chat else "text_completion"
        obj: dict[str, Any] = {"id": oid, "object": kind, "created": int(time.time())}
        obj.update(model=self.answer_as.get(body["model"], body["model"]), system_fingerprint=FINGERPRINT)
        lp = body.get("logprobs") is True and chat
        if chat:
            obj["service_tier"] = "default"
        if chat and "tool-call" in flags and body.get("tools"):
            return await _tool_call(request, obj, body, usage)
        if body.get("stream"):
            if (body.get("stream_options") or {}).get("include_usage") is not True:
                usage = None
            cut = "cut-stream" in flags
            try:
                timing = (t0 + ttft, itl, cut, lp, "no-done" in flags)
                return await self._stream(request, obj, n, finish, usage, timing)
            except (asyncio.CancelledError, ConnectionResetError):  # the client hung up mid-stream
                self.disconnects[request.path] += 1
                raise
        await _sleep_until(t0 + ttft + max(n - 1, 0) * itl)
        text = " ".join(f"tok{i}" for i in range(n))
        if chat:
            msg = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
            logprobs = {"content": [_logprob(i) for i in range(n)], "refusal": None} if lp else None
            choice = {"index": 0, "message": msg, "logprobs": logprobs, "finish_reason": finish}
        else:
            choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        obj["choices"] = [choice]
        if usage is not None:
            obj["usage"] = usage
        return await self._json(request, obj, flags)

    @staticmethod
    async def _stream(
        request: web.Request, head: dict, n: int, finish: str, usage: dict | None, timing: tuple
    ) -> web.StreamResponse:
        first_at, itl, cut, lp, no_done = timing
        chat = head["object"] == "chat.completion"
        head["object"] = "chat.completion.chunk" if chat else "text_completion"
        if usage is not None:
            head["usage"] = None  # as OpenAI does on every chunk when include_usage is set

        def frame(fin: str | None = None, token: int | None = None, **delta: Any) -> bytes:
            logprobs = {"content": [_logprob(token)], "refusal": None} if lp and token is not None else None
            choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": fin}
            if not chat:
                choice = {"text": delta.get("content", ""), **choice}
                del choice["delta"]
            return _sse({**head, "choices": [choice]})

        first = frame(role="assistant", content="", refusal=None) if chat else b""
        # Joined, the pieces give exactly the non-streamed text "tok0 tok1 …".
        frames = [frame(content=f"{' ' if i else ''}tok{i}", token=i) for i in range(n)]
        usage_frame = b"" if usage is None else _sse({**head, "choices": [], "usage": usage})
        tail = frame(finish) + usage_frame + (b"" if no_done else _DONE)
        parts = (frames[:CUT_AFTER_CHUNKS] if cut else frames) or [b""]
        # The role chunk goes out with the first content chunk: "first chunk" == "first token".
        parts[0] = first + parts[0]
        parts[-1] += b"" if cut else tail
        resp = web.StreamResponse(headers=_SSE_HEADERS)
        with contextlib.suppress(ConnectionError):  # the client left: nobody to tell
            await resp.prepare(request)
            for k, part in enumerate([b"".join(parts)] if itl <= 0 else parts):
                await _sleep_until(first_at + k * itl)
                await resp.write(part)
            if cut:
                _drop(request, rst=False)  # flushes the chunks, then FIN without the last 0-chunk
        return resp

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request)
        if isinstance(begun, web.StreamResponse):
            return begun
        body, flags, t0 = begun
        inp, dims = body.get("input"), min(max(int(body.get("dimensions") or EMBED_DIM), 1), 4096)
        if not inp or not isinstance(inp, str | list):
            return _error("'input' must be a non-empty string or array.", param="input")
        items = [inp] if isinstance(inp, str) or isinstance(inp[0], int) else inp
        b64 = body.get("encoding_format") == "base64"
        vecs = [_embedding(x if isinstance(x, str) else orjson.dumps(x), dims)[b64] for x in items]
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vecs)]
        obj: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
        if "no-usage" not in flags:
            obj["usage"] = {"prompt_tokens": _count(inp), "total_tokens": _count(inp)}
        await _sleep_until(t0 + self._timing(request, flags)[0])
        return await self._json(request, obj, flags)


async def _tool_call(request: web.Request, obj: dict, body: dict, usage: dict | None) -> web.StreamResponse:
    """The model calls the request's first tool with ``TOOL_ARGS`` (streamed in two fragments)."""
    name = body["tools"][0]["function"]["name"]
    call_id = f"call_{random.getrandbits(48):012x}"
    if not body.get("stream"):
        fn = {"name": name, "arguments": TOOL_ARGS}
        msg = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": fn}],
        }
        obj["choices"] = [{"index": 0, "message": msg, "logprobs": None, "finish_reason": "tool_calls"}]
        if usage is not None:
            obj["usage"] = usage
        return web.Response(body=orjson.dumps(obj), content_type=_JSON)
    obj["object"] = "chat.completion.chunk"

    def frame(delta: dict, fin: str | None = None) -> bytes:
        return _sse({**obj, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": fin}]})

    half = len(TOOL_ARGS) // 2
    first = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    parts = [
        frame({"role": "assistant", "content": None, "tool_calls": [first]}),
        *(
            frame({"tool_calls": [{"index": 0, "function": {"arguments": a}}]})
            for a in (TOOL_ARGS[:half], TOOL_ARGS[half:])
        ),
        frame({}, "tool_calls"),
    ]
    if usage is not None and (body.get("stream_options") or {}).get("include_usage") is True:
        parts.append(_sse({**obj, "choices": [], "usage": usage}))
    return web.Response(body=b"".join(parts) + _DONE, headers=_SSE_HEADERS)


@lru_cache(maxsize=1)
def _gzip_bomb() -> bytes:
    z, block = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS), b" " * (1 << 20)
    return b"".join(z.compress(block) for _ in range(BOMB_BYTES >> 20)) + z.flush()


async def _hostile(request: web.Request, mode: str, body: dict) -> web.StreamResponse:
    """``echo-key``: a 401 quoting the Authorization header (as OpenAI's own does, in part);
    ``gzip-bomb``: a small gzip body inflating to ``BOMB_BYTES``; ``sse-no-blank``: an event
    stream of ``data:`` bytes that never ends an event; ``endless-stream``: valid chunks forever."""
    if mode == "echo-key":
        return _error(
            f"Incorrect API key provided: {request.headers.get('Authorization')}.", 401, code="invalid_api_key"
        )
    if mode == "gzip-bomb":
        return web.Response(body=_gzip_bomb(), headers={"Content-Type": _JSON, "Content-Encoding": "gzip"})
    resp = web.StreamResponse(headers=_SSE_HEADERS)
    chunk = _sse(
        {
            "id": "chatcmpl-endless",
            "object": "chat.completion.chunk",
            "model": body["model"],
            "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}],
        }
    )
    pause = 0.02
    if mode == "sse-no-blank":
        chunk, pause = b"data: " + b"x" * 65536, 0.0
    end = asyncio.get_running_loop().time() + HOSTILE_CAP_S
    with contextlib.suppress(ConnectionError):
        await resp.prepare(request)
        while asyncio.get_running_loop().time() < end:
            await resp.write(chunk)
            await asyncio.sleep(pause)
    return resp


async def serve(host: str, port: int, port_file: str | None) -> None:
    kwargs = {"handler_cancellation": True, "shutdown_timeout": 0.5}
    runner = web.AppRunner(FakeServer().app(), access_log=None, handle_signals=False, **kwargs)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=4096).start()
    chosen = runner.addresses[0][1]
    if port_file:  # written atomically: a reader never sees half a port
        Path(f"{port_file}.tmp").write_text(str(chosen))
        os.replace(f"{port_file}.tmp", port_file)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"fake upstream listening on http://{host}:{chosen}/v1", flush=True)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible upstream for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--port-file", help="write the listening port to this file")
    args = parser.parse_args(argv)
    uvloop = importlib.import_module("uvloop") if importlib.util.find_spec("uvloop") else None
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None) as runner:
        runner.run(serve(args.host, args.port, args.port_file))


class FakeUpstream:
    """The fake as a subprocess: ``with FakeUpstream(env={...}) as fake: fake.base_url``."""

    def __init__(self, *, env: dict[str, str] | None = None, startup_timeout: float = 20.0) -> None:
        self.env, self.startup_timeout = dict(env or {}), startup_timeout
        self.port, self.url, self.base_url = 0, "", ""  # url: http://127.0.0.1:PORT, base_url: …/v1
        self._proc, self._tmp = None, None

    def __enter__(self) -> FakeUpstream:
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-upstream-")
        port_file, log_file = Path(self._tmp.name, "port"), Path(self._tmp.name, "stderr")
        cmd = [sys.executable, "-m", "tests.fakes.upstream", "--port-file", str(port_file)]
        with log_file.open("wb") as log:  # the child keeps its own copy of the descriptor
            env, root = {**os.environ, **self.env}, Path(__file__).resolve().parents[2]
            self._proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + self.startup_timeout
        while not port_file.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                err = log_file.read_text(errors="replace")
                self.__exit__()
                raise RuntimeError(f"the fake upstream did not start:\n{err}")
            time.sleep(0.01)
        self.port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()  # SIGTERM: a clean shutdown
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._tmp is not None:
            self._tmp.cleanup()
        self._proc = self._tmp = None

    def stats(self) -> dict[str, Any]:
        """Counts per path and model; ``last`` / ``last_by_path``: method, path, body, headers;
        ``disconnects``: streams per path whose client hung up before their end."""
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as r:
            return orjson.loads(r.read())

    def request_log(self) -> list[dict[str, Any]]:
        """Every request since the last reset (newest ``LOG_SIZE``), oldest first."""
        with urllib.request.urlopen(f"{self.url}/_log", timeout=10) as r:
            return list(orjson.loads(r.read()))

    def reset(self) -> dict[str, Any]:
        """Clear the counters (including the per-model counts behind ``flaky-N``)."""
        with urllib.request.urlopen(f"{self.url}/_reset", data=b"", timeout=10) as r:
            return orjson.loads(r.read())


if __name__ == "__main__":
    main()
