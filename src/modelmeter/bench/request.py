"""One benchmark request over the pooled aiohttp session, timed as vLLM's ``bench serve`` does.

Streams are read with the gateway's own SSE parser and usage accumulator (``modelmeter.sse``,
``modelmeter.metering.usage``): one implementation of both, shared with the relay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from modelmeter.bench.metrics import RequestResult
from modelmeter.metering import tokens
from modelmeter.metering.usage import StreamAccumulator, Usage
from modelmeter.sse import DONE, EventTooLarge, SSEParser

TAGS_HEADER = "x-modelmeter-tags"
USER_AGENT = "modelmeter-bench"
KEEPALIVE_HINT = " (if the server drops kept-alive connections, try --no-keepalive)"


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # the full endpoint URL, e.g. http://127.0.0.1:8000/v1/chat/completions
    call_type: str  # chat | completion | embedding
    model: str
    stream: bool
    keep_text: bool = False  # keep each answer (evaluation)


def headers(api_key: str | None, tag: str | None) -> dict[str, str]:
    out = {"content-type": "application/json", "accept": "application/json"}
    if api_key:
        out["authorization"] = f"Bearer {api_key}"
    if tag:
        out[TAGS_HEADER] = tag
    return out


def new_session(limit: int, timeout: float, keepalive: bool = True) -> aiohttp.ClientSession:
    """One pooled session for the whole run (``limit`` 0: no cap on connections); without
    ``keepalive`` every request opens its own connection (for servers that close them early)."""
    connector = aiohttp.TCPConnector(
        limit=limit, limit_per_host=0, ttl_dns_cache=300, enable_cleanup_closed=True, force_close=not keepalive
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers={"user-agent": USER_AGENT},
        timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=10.0),
    )


async def send(
    session: aiohttp.ClientSession,
    target: Target,
    body: bytes,
    hdrs: dict[str, str],
    prompt_tokens: int = 0,
    index: int = 0,
) -> RequestResult:
    """Send one request; never raises for a failed request (the result says why)."""
    t0 = time.perf_counter()
    result = RequestResult(ok=False, start=t0, index=index)
    try:
        async with session.post(target.url, data=body, headers=hdrs) as resp:
            result.status = resp.status
            if resp.status != 200:
                result.error = _error_message(resp.status, await resp.read())
            elif target.stream and resp.headers.get("content-type", "").startswith("text/event-stream"):
                await _read_stream(resp, target, result, t0)
            else:
                _read_whole(await resp.read(), target, result)
            # A modelmeter gateway's x-request-id is its record's request_id (eval's per-item cost).
            result.response_id = resp.headers.get("x-request-id") or result.response_id
    except TimeoutError:
        result.error = "timed out"
    except aiohttp.ClientConnectorError as exc:
        result.error = f"cannot connect: {exc.os_error.strerror or exc}"
    except aiohttp.ServerDisconnectedError:
        result.error = "the server closed the connection" + KEEPALIVE_HINT
    except aiohttp.ClientOSError as exc:
        result.error = f"connection error: {exc.strerror or exc}"[:200] + KEEPALIVE_HINT
    except (aiohttp.ClientError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    except EventTooLarge as exc:  # the parser's bound on one SSE event (sse.py)
        result.error = str(exc)
    result.e2e = time.perf_counter() - t0
    if result.ok and result.ttft is None and target.call_type != "embedding" and not target.stream:
        result.ttft = result.e2e  # a whole answer: its first token arrives with its last
    if result.ok and not result.usage_reported:
        result.prompt_tokens = prompt_tokens
    return result


async def _read_stream(resp: aiohttp.ClientResponse, target: Target, result: RequestResult, t0: float) -> None:
    parser = SSEParser()
    acc = StreamAccumulator(target.call_type)
    itl = result.itl
    last = 0.0
    done = False
    async for chunk in resp.content.iter_any():
        now = time.perf_counter()
        for event in parser.feed(chunk):
            data = event.data
            if data is None:
                continue
            if data == DONE:
                done = True
                continue
            if data.startswith(b'{"error"'):
                result.error = _error_message(200, data, "error in the stream")
                continue
            if acc.add(data):
                if result.ttft is None:
                    result.ttft = now - t0
                else:
                    itl.append(now - last)
                last = now
    for event in parser.flush():
        done = done or event.data == DONE
    if result.error is None and not done:
        result.error = "the stream ended before [DONE]"
    result.ok = result.error is None
    result.response_id = acc.id if isinstance(acc.id, str) else None
    if acc.usage.reported:
        _usage(result, acc.usage, acc.text() if target.keep_text else "", target)
    else:  # estimated as the gateway does: every choice's text and tool calls
        _usage(result, acc.usage, acc.all_text(), target)
        if target.keep_text:
            result.text = acc.text()


def _read_whole(data: bytes, target: Target, result: RequestResult) -> None:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        result.error = "the response is not valid JSON"
        return
    if not isinstance(body, dict):
        result.error = "the response is not a JSON object"
        return
    result.ok = True
    rid = body.get("id")
    result.response_id = rid if isinstance(rid, str) else None
    usage = Usage.from_openai(body.get("usage"))
    text = _text_of(body, target.call_type) if target.keep_text or not usage.reported else ""
    _usage(result, usage, text, target)


def _usage(result: RequestResult, usage: Usage, text: str, target: Target) -> None:
    if usage.reported:
        result.usage_reported = True
        result.prompt_tokens = usage.prompt_tokens
        result.completion_tokens = usage.completion_tokens
    elif text:
        result.completion_tokens = tokens.count_text(text, target.model)
    if target.keep_text:
        result.text = text


def _text_of(body: dict[str, Any], call_type: str) -> str:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    first = choices[0]
    if call_type == "chat":
        message = first.get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else ""
    text = first.get("text")
    return text if isinstance(text, str) else ""


def _error_message(status: int, data: bytes, default: str | None = None) -> str:
    """``HTTP 404: the message`` from an OpenAI-shaped error body, else a short excerpt."""
    message = None
    try:
        body = orjson.loads(data)
        err = body.get("error") if isinstance(body, dict) else None
        message = err.get("message") if isinstance(err, dict) else err if isinstance(err, str) else None
    except orjson.JSONDecodeError:
        message = data[:200].decode("utf-8", "replace").strip() or None
    prefix = default if status == 200 and default else f"HTTP {status}"
    return f"{prefix}: {message}" if message else prefix
