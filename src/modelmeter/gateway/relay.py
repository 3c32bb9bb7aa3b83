"""One upstream exchange: send the request, relay the answer, and note what the record needs."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelmeter.apis.base import FrontDoor, StreamAcc
from modelmeter.apis.chat import CHAT
from modelmeter.asgi import Send
from modelmeter.config import Deployment
from modelmeter.gateway.cache import ResponseCache, cache_key
from modelmeter.gateway.errors import APIError, relayed_error
from modelmeter.gateway.response_headers import (
    passed_headers,
    request_id_header,
    upstream_request_id,
    usable_id,
)
from modelmeter.gateway.stream_relay import UPSTREAM_STATUS as _UPSTREAM_STATUS
from modelmeter.gateway.stream_relay import relay_stream
from modelmeter.metering.record import CallRecord
from modelmeter.metering.usage import Usage
from modelmeter.routing.attempt import Fallback, Try
from modelmeter.upstreams.client import Timeouts, UpstreamClient, UpstreamError
from modelmeter.upstreams.headers import upstream_headers
from modelmeter.upstreams.limits import LimitedResponse, ResponseLimits, scrubber_for

_DEFAULT_LIMITS = ResponseLimits()
CACHE_HEADER = b"x-modelmeter-cache"
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 5.0
RETRY_AFTER_CAP_S = 30.0
_NEVER_RETRIED = (501, 508)  # not implemented, loop detected: the same answer every time
_RETRIED_KINDS = ("connect", "protocol")  # the client's post() raises before any response byte
# Seams for tests: record the delays instead of sleeping, pin the jitter.
_sleep = asyncio.sleep
_random = random.random


@dataclass(slots=True)
class Call:
    """The state of one call while it is relayed; ``finish`` settles the record's timings."""

    rec: CallRecord
    body: dict[str, Any]
    t0: float  # perf_counter at arrival
    send: Send
    upstream_wait: float = 0.0  # seconds spent waiting on the upstream
    # perf_counter when the first content, and the end of the answer, were handed to the server to
    # send: taken before awaiting send(), which may yield to other calls after the bytes are out
    # (the client can have them before we resume; the record must not say later than it saw).
    t_first: float | None = None
    t_done: float | None = None
    started: bool = False  # response headers sent: too late for an error status
    complete: bool = False  # the client has the whole answer (its last body message, or [DONE],
    # is being or has been sent): a disconnect now is the end of the exchange, not a hang-up
    acc: StreamAcc | None = field(default=None)
    door: FrontDoor = CHAT  # the client's API: usage, stream accumulator, error shape
    api: str = "chat"  # the API the upstream speaks (== door.api: pass-through)
    passed_headers: dict[str, str] | None = None  # the client's API headers sent upstream
    hop: str | None = None  # the x-modelmeter-hop value sent upstream (loop detection, guards.py)
    virtual_key: str | None = None  # the caller's key: scrubbed from what the upstream sends back
    # The client hung up on a non-streamed call: the upstream's answer is still read (within the
    # deployment's timeout) for its real usage, but sent to nobody. t_gone: when it hung up.
    disconnected: bool = False
    t_gone: float | None = None
    route: Try | None = None  # a routed deployment's current attempt (routing/): None for one upstream

    def fail(self, status: int, message: str) -> None:
        self.rec.status = "error"
        self.rec.http_status = status
        self.rec.error = message

    def finish(self) -> None:
        rec = self.rec
        t_end = self.t_done or self.t_gone or time.perf_counter()
        rec.latency_ms = (t_end - self.t0) * 1000.0
        rec.end = rec.start + (t_end - self.t0)
        rec.overhead_ms = max(rec.latency_ms - self.upstream_wait * 1000.0, 0.0)
        if self.acc is not None:
            acc = self.acc
            rec.request_id = rec.request_id or acc.id
            rec.model_id = rec.model_id or acc.model
            if acc.usage.reported:
                rec.usage = acc.usage
            rec.response_text = acc.all_text()
            if acc.chunks:
                rec.response_body = rec.response_body or acc.response()
        rec.request_id = rec.request_id or rec.id  # what x-request-id said, or would have said
        if rec.stream and self.t_first is not None:
            rec.ttft_ms = (self.t_first - self.t0) * 1000.0
        elif not rec.stream:
            rec.ttft_ms = rec.latency_ms


def upstream_request(body: dict[str, Any], dep: Deployment, door: FrontDoor = CHAT) -> tuple[bytes, bool]:
    """The body sent upstream, and whether the client itself asked for the usage chunk."""
    out = dict(body)
    out["model"] = dep.model
    wants_usage = not door.stream_options  # other APIs always send their usage
    if body.get("stream") is True and door.stream_options:
        options = body.get("stream_options") or {}
        wants_usage = bool(options.get("include_usage"))
        # Always ask for usage, so streamed calls are never recorded with zero tokens.
        out["stream_options"] = {**options, "include_usage": True}
    try:
        return orjson.dumps(out), wants_usage
    except orjson.JSONEncodeError:  # parsed (orjson reads 1024 levels) but cannot be re-encoded (254)
        raise APIError(400, "The request body is nested too deeply.", code="invalid_json") from None


async def relay(
    call: Call,
    client: UpstreamClient,
    url: str,
    dep: Deployment,
    cache: ResponseCache | None = None,
    path: str = "",
    limits: ResponseLimits = _DEFAULT_LIMITS,
) -> None:
    payload, wants_usage = upstream_request(call.body, dep, call.door)
    key = None
    if cache is not None and dep.cache_ttl and not call.rec.stream and call.door.api == "chat":
        key = cache_key(dep.name, path or url, call.body, call.rec.key_alias)
        hit = cache.get(key) if key is not None else None
        if hit is not None:
            _answer_from_cache(call, hit.data, hit.parsed)
            await _send_whole(call, 200, hit.data, {}, [(CACHE_HEADER, b"hit")])
            return
    resp = LimitedResponse(
        await _post_with_retries(call, client, url, dep, payload), limits, scrubber_for(dep.api_key(), call.virtual_key)
    )
    try:
        streamed = (
            call.rec.stream
            and resp.status == 200
            and resp.headers.get("content-type", "").startswith("text/event-stream")
        )
        if streamed:
            await relay_stream(call, resp, wants_usage, dep.chunk_timeout, limits.max_event_bytes)
        else:
            extra = [(CACHE_HEADER, b"miss")] if key is not None else []
            data = await _relay_whole(call, resp, extra)
            if key is not None and data is not None and cache is not None and dep.cache_ttl:
                assert isinstance(call.rec.response_body, dict)
                cache.put(key, data, call.rec.response_body, dep.cache_ttl)
    finally:
        resp.close()


def _answer_from_cache(call: Call, data: bytes, parsed: dict[str, Any]) -> None:
    """The record of a call answered from the response cache: the cached answer's usage (what the
    cache saved), ``cache_hit`` (priced at zero in ``finish``), no retries, no upstream wait."""
    rec = call.rec
    rec.cache_hit = True
    rec.retries = 0
    rec.http_status = 200
    rec.usage = Usage.from_openai(parsed.get("usage"))
    rec.request_id = rec.id  # no upstream call: this answer is its own, not the cached one's
    rec.model_id = parsed.get("model") if isinstance(parsed.get("model"), str) else None
    rec.response_body = parsed


def _body_id(parsed: dict[str, Any]) -> str | None:
    return usable_id(parsed.get("id"))


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt))."""
    return _random() * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (capped); None when absent or not a number of seconds."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    if seconds != seconds or seconds < 0:
        return None
    return min(seconds, RETRY_AFTER_CAP_S)


async def _post_with_retries(call: Call, client: UpstreamClient, url: str, dep: Deployment, payload: bytes) -> Any:
    """Send the request; on a connect error (or a protocol error: nothing was received yet), a 429
    or a 5xx, try again up to ``dep.max_retries`` times, waiting with exponential backoff and full
    jitter (or the 429's ``Retry-After``). This wraps only the request and its status, so nothing
    has reached the client yet and a retry is invisible to it; streams are never retried once
    relayed. No retry whose wait would end past the deployment's ``timeout`` (counted from the
    first attempt): the last failure is passed through as it is.

    The backoff waits count as upstream wait: the call is waiting on the upstream to be able to
    answer, so ``overhead_ms`` remains the gateway's own time."""
    rec = call.rec
    started = time.perf_counter()
    route = call.route
    deadline = started + dep.timeout
    max_retries = dep.max_retries
    if route is not None:  # routed: the next upstream is the retry, within the attempts' budget
        deadline = min(deadline, route.deadline)
        max_retries = 0
    attempt = 0
    while True:
        if attempt and call.disconnected:  # it hung up during the backoff: nobody wants a retry
            raise APIError(499, "client_disconnected", code="client_disconnected")
        t = time.perf_counter()
        total = dep.timeout if attempt == 0 and route is None else max(deadline - t, 0.001)
        try:
            headers = upstream_headers(dep, call.hop, call.api, call.passed_headers)
            resp = await client.post(url, payload, headers, Timeouts(total=total, connect=dep.connect_timeout))
        except UpstreamError as exc:
            call.upstream_wait += time.perf_counter() - t
            if exc.kind == "timeout":  # connected and sent (connect timeouts are "connect")
                rec.upstream_reached = True
            if route is not None and route.error(exc.kind, exc.message) and not call.disconnected:
                raise Fallback from None
            if (
                exc.kind in _RETRIED_KINDS
                and attempt < max_retries
                and not call.disconnected
                and await _wait_before_retry(call, backoff_delay(attempt), deadline)
            ):
                attempt += 1
                rec.retries = attempt
                continue
            raise APIError(
                _UPSTREAM_STATUS[exc.kind], exc.message, "upstream_error", code=f"upstream_{exc.kind}"
            ) from None
        except BaseException:
            call.upstream_wait += time.perf_counter() - t
            raise
        call.upstream_wait += time.perf_counter() - t
        rec.upstream_reached = True
        if route is not None and route.answered(resp.status) and not call.disconnected:
            resp.close()
            raise Fallback
        if (
            (resp.status == 429 or resp.status >= 500)
            and resp.status not in _NEVER_RETRIED
            and attempt < max_retries
            and not call.disconnected
        ):
            delay = None
            if resp.status == 429:
                delay = retry_after_seconds(resp.headers.get("retry-after"))
            if delay is None:
                delay = backoff_delay(attempt)
            if time.perf_counter() + delay < deadline:
                resp.close()
                await _wait_before_retry(call, delay, deadline)
                attempt += 1
                rec.retries = attempt
                continue
        return resp


async def _wait_before_retry(call: Call, delay: float, deadline: float) -> bool:
    """Sleep ``delay`` (as upstream wait) unless that ends past the deadline: False then."""
    t = time.perf_counter()
    if t + delay >= deadline:
        return False
    try:
        await _sleep(delay)
    finally:
        call.upstream_wait += time.perf_counter() - t
    return True


async def _relay_whole(call: Call, resp: Any, extra_headers: list[tuple[bytes, bytes]] | None = None) -> bytes | None:
    """Relay a whole answer; its bytes when it was a 200 with a JSON object (cacheable)."""
    rec = call.rec
    rec.request_id = upstream_request_id(resp.headers)
    t = time.perf_counter()
    try:
        data: bytes = await resp.read()
    except UpstreamError as exc:
        raise APIError(_UPSTREAM_STATUS[exc.kind], exc.message, "upstream_error", code=f"upstream_{exc.kind}") from None
    finally:
        call.upstream_wait += time.perf_counter() - t
    if resp.status >= 400:
        message, err, out = relayed_error(resp.status, data)
        call.fail(resp.status, message)
        rec.request_id = rec.request_id or rec.id
        rec.response_body = err
        await _send_whole(call, resp.status, out, resp.headers)
        return None
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise APIError(
            502,
            "The upstream answered with a body that is not valid JSON.",
            "upstream_error",
            code="upstream_invalid_json",
        ) from None
    if not isinstance(parsed, dict):
        raise APIError(
            502,
            "The upstream answered with JSON that is not an object.",
            "upstream_error",
            code="upstream_invalid_json",
        )
    rec.http_status = resp.status
    rec.usage = call.door.usage(parsed.get("usage"))
    # The upstream's request id, else the answer's own id (a local server sends no x-request-id).
    rec.request_id = rec.request_id or _body_id(parsed) or rec.id
    rec.model_id = parsed.get("model") if isinstance(parsed.get("model"), str) else None
    rec.response_body = parsed
    await _send_whole(call, resp.status, data, resp.headers, extra_headers)
    return data if resp.status == 200 else None


async def _send_whole(
    call: Call,
    status: int,
    data: bytes,
    headers: Mapping[str, str],
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    if call.disconnected:  # the client hung up: the answer is only recorded
        return
    out_headers = [
        (b"content-type", b"application/json"),
        *(extra_headers or ()),
        *passed_headers(headers),
        request_id_header(call.rec.request_id or call.rec.id),
    ]
    call.started = True
    await call.send({"type": "http.response.start", "status": status, "headers": out_headers})
    call.complete = True
    call.t_done = time.perf_counter()
    await call.send({"type": "http.response.body", "body": data})
