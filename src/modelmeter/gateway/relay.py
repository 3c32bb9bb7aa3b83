"""One upstream exchange: send the request, relay the answer, and note what the record needs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelmeter.asgi import Send
from modelmeter.config import Deployment
from modelmeter.gateway.errors import APIError, error_body, upstream_error_message
from modelmeter.metering.record import CallRecord
from modelmeter.metering.usage import StreamAccumulator, Usage
from modelmeter.sse import DONE, SSEEvent, SSEParser, encode_event
from modelmeter.upstreams.client import Timeouts, UpstreamClient, UpstreamError

SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"),
               (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
_UPSTREAM_STATUS = {"connect": 502, "timeout": 504, "protocol": 502}


@dataclass(slots=True)
class Call:
    """The state of one call while it is relayed; ``finish`` settles the record's timings."""

    rec: CallRecord
    body: dict[str, Any]
    t0: float  # perf_counter at arrival
    send: Send
    upstream_wait: float = 0.0  # seconds spent waiting on the upstream
    t_first: float | None = None  # perf_counter when the first content reached the client
    started: bool = False  # response headers sent: too late for an error status
    complete: bool = False  # the client has the whole answer (its last body message, or [DONE],
    # is being or has been sent): a disconnect now is the end of the exchange, not a hang-up
    acc: StreamAccumulator | None = field(default=None)

    def fail(self, status: int, message: str) -> None:
        self.rec.status = "error"
        self.rec.http_status = status
        self.rec.error = message

    def finish(self) -> None:
        rec = self.rec
        t_end = time.perf_counter()
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
        if rec.stream and self.t_first is not None:
            rec.ttft_ms = (self.t_first - self.t0) * 1000.0
        elif not rec.stream:
            rec.ttft_ms = rec.latency_ms


def upstream_request(body: dict[str, Any], dep: Deployment) -> tuple[bytes, bool]:
    """The body sent upstream, and whether the client itself asked for the usage chunk."""
    out = dict(body)
    out["model"] = dep.model
    wants_usage = False
    if body.get("stream") is True:
        options = body.get("stream_options") or {}
        wants_usage = bool(options.get("include_usage"))
        # Always ask for usage, so streamed calls are never recorded with zero tokens.
        out["stream_options"] = {**options, "include_usage": True}
    try:
        return orjson.dumps(out), wants_usage
    except orjson.JSONEncodeError:  # parsed (orjson reads 1024 levels) but cannot be re-encoded (254)
        raise APIError(400, "The request body is nested too deeply.", code="invalid_json") from None


def upstream_headers(dep: Deployment) -> Mapping[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    key = dep.api_key()
    if key:
        headers["authorization"] = f"Bearer {key}"
    return headers


async def relay(call: Call, client: UpstreamClient, url: str, dep: Deployment) -> None:
    payload, wants_usage = upstream_request(call.body, dep)
    t = time.perf_counter()
    try:
        resp = await client.post(url, payload, upstream_headers(dep),
                                 Timeouts(total=dep.timeout, connect=dep.connect_timeout))
    except UpstreamError as exc:
        raise APIError(_UPSTREAM_STATUS[exc.kind], exc.message, "upstream_error",
                       code=f"upstream_{exc.kind}") from None
    finally:
        call.upstream_wait += time.perf_counter() - t
    try:
        streamed = call.rec.stream and resp.status == 200 and resp.headers.get(
            "content-type", "").startswith("text/event-stream")
        if streamed:
            await _relay_stream(call, resp, wants_usage)
        else:
            await _relay_whole(call, resp)
    finally:
        resp.close()


async def _relay_whole(call: Call, resp: Any) -> None:
    rec = call.rec
    t = time.perf_counter()
    try:
        data: bytes = await resp.read()
    except UpstreamError as exc:
        raise APIError(_UPSTREAM_STATUS[exc.kind], exc.message, "upstream_error",
                       code=f"upstream_{exc.kind}") from None
    finally:
        call.upstream_wait += time.perf_counter() - t
    if resp.status >= 400:
        message, err = upstream_error_message(resp.status, data)
        call.fail(resp.status, message)
        rec.response_body = err
        out = data if err.get("error", {}).get("code") != f"upstream_{resp.status}" else orjson.dumps(err)
        await _send_whole(call, resp.status, out, resp.headers)
        return
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise APIError(502, "The upstream answered with a body that is not valid JSON.",
                       "upstream_error", code="upstream_invalid_json") from None
    if not isinstance(parsed, dict):
        raise APIError(502, "The upstream answered with JSON that is not an object.",
                       "upstream_error", code="upstream_invalid_json")
    rec.http_status = resp.status
    rec.usage = Usage.from_openai(parsed.get("usage"))
    rec.request_id = parsed.get("id") if isinstance(parsed.get("id"), str) else None
    rec.model_id = parsed.get("model") if isinstance(parsed.get("model"), str) else None
    rec.response_body = parsed
    await _send_whole(call, resp.status, data, resp.headers)


async def _send_whole(call: Call, status: int, data: bytes, headers: Mapping[str, str]) -> None:
    out_headers = [(b"content-type", b"application/json")]
    retry_after = headers.get("retry-after")
    if retry_after:
        out_headers.append((b"retry-after", retry_after.encode("latin-1")))
    call.started = True
    await call.send({"type": "http.response.start", "status": status, "headers": out_headers})
    call.complete = True
    await call.send({"type": "http.response.body", "body": data})


async def _relay_stream(call: Call, resp: Any, wants_usage: bool) -> None:
    rec = call.rec
    acc = call.acc = StreamAccumulator(rec.call_type)
    parser = SSEParser()
    send = call.send
    call.started = True
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    saw_done = False
    chunks = resp.chunks().__aiter__()

    def relayed(events: list[SSEEvent]) -> tuple[list[bytes], bool]:
        """What the client gets of these events, and whether they carried its first content."""
        nonlocal saw_done
        out: list[bytes] = []
        first = False
        for event in events:
            data = event.data
            if data is None:
                out.append(event.raw)
                continue
            if data == DONE:
                # The client has it all now (the openai client hangs up at [DONE]): whatever the
                # connections do from here on, this call succeeded.
                saw_done = call.complete = True
                out.append(event.raw)
                continue
            produced = acc.add(data)
            if produced and call.t_first is None:
                first = True
            if not wants_usage and acc.usage.reported and b'"usage"' in data:
                if acc.last_usage_only:
                    continue  # the client did not ask for the usage chunk: keep it to ourselves
                out.append(encode_event(_without_usage(data)))
                continue
            out.append(event.raw)
        return out, first

    failed: UpstreamError | None = None
    while True:
        t = time.perf_counter()
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            break
        except UpstreamError as exc:
            failed = exc
            break
        finally:  # also when the client hangs up (cancelled) while we wait on the upstream
            call.upstream_wait += time.perf_counter() - t
        out, first = relayed(parser.feed(chunk))
        if out:
            await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
            if first:
                call.t_first = time.perf_counter()
    if failed is not None and not saw_done:
        await _end_stream_with_error(call, _UPSTREAM_STATUS[failed.kind], failed.message)
        return
    # A last event the upstream did not end with a blank line is still relayed and counted.
    out, first = relayed(parser.flush())
    if out:
        await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
        if first:
            call.t_first = time.perf_counter()
    if not saw_done:
        await _end_stream_with_error(call, 502, "the upstream ended the stream before [DONE]")
        return
    rec.http_status = 200
    call.complete = True
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _without_usage(data: bytes) -> bytes:
    try:
        chunk = orjson.loads(data)
        if not isinstance(chunk, dict):
            return data
        chunk.pop("usage", None)
        return orjson.dumps(chunk)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return data


async def _end_stream_with_error(call: Call, status: int, message: str) -> None:
    """Headers are gone already: tell the client in the stream, then end it cleanly."""
    call.fail(status, message)
    err = error_body(message, "upstream_error", None, f"upstream_{status}")
    await call.send({"type": "http.response.body", "body": encode_event(orjson.dumps(err)),
                     "more_body": True})
    call.complete = True
    await call.send({"type": "http.response.body", "body": b"", "more_body": False})
