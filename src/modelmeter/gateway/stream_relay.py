"""Relaying a streamed answer: each SSE event read once (usage, text, ids) and passed on as it
came; the stream's end judged (complete, cut, stalled) and told to the client in the stream."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import orjson

from modelmeter.asgi import Message, Send
from modelmeter.gateway.response_headers import (
    passed_headers,
    request_id_header,
    upstream_request_id,
    usable_id,
)
from modelmeter.sse import DONE, EventTooLarge, SSEEvent, SSEParser, encode_event
from modelmeter.upstreams.client import UpstreamError
from modelmeter.upstreams.limits import LIMIT_KINDS, ResponseLimits

if TYPE_CHECKING:
    from modelmeter.gateway.relay import Call

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
UPSTREAM_STATUS = {"connect": 502, "timeout": 504, "protocol": 502, **dict.fromkeys(LIMIT_KINDS, 502)}
_DEFAULT_LIMITS = ResponseLimits()


async def relay_stream(
    call: Call,
    resp: Any,
    wants_usage: bool,
    chunk_timeout: float = 60.0,
    max_event_bytes: int = _DEFAULT_LIMITS.max_event_bytes,
) -> None:
    rec = call.rec
    acc = call.acc = call.door.accumulator(rec.call_type)
    parser = SSEParser(max_event_bytes)
    upstream_id = upstream_request_id(resp.headers)
    passed = passed_headers(resp.headers)

    async def send(message: Message) -> None:
        # The headers go out with the first event, so that x-request-id can be the answer's own
        # id where the upstream sends no x-request-id (as a non-streamed answer's is).
        if not call.started:
            rec.request_id = upstream_id or usable_id(acc.id) or rec.id
            call.started = True
            await call.send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*SSE_HEADERS, *passed, request_id_header(rec.request_id)],
                }
            )
        await call.send(message)

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
    stalled = False  # no chunk within chunk_timeout
    while True:
        t = time.perf_counter()
        try:
            async with asyncio.timeout(chunk_timeout):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            break
        except UpstreamError as exc:
            failed = exc
            break
        except TimeoutError:  # only ours: asyncio.timeout turned its cancellation into this
            failed = UpstreamError("timeout", f"the upstream sent no chunk for {chunk_timeout:g} s")
            stalled = True
            break
        finally:  # also when the client hangs up (cancelled) while we wait on the upstream
            call.upstream_wait += time.perf_counter() - t
        try:
            events = parser.feed(chunk)
        except EventTooLarge as exc:
            failed = UpstreamError("event_too_large", str(exc))
            break
        out, first = relayed(events)
        if out:
            if first:
                call.t_first = time.perf_counter()
            await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
    if failed is not None and not saw_done:
        limit = f"upstream_{failed.kind}" if failed.kind in LIMIT_KINDS else None
        await _end_stream_with_error(
            call, send, UPSTREAM_STATUS[failed.kind], failed.message, "upstream_timeout" if stalled else limit
        )
        return
    # A last event the upstream did not end with a blank line is still relayed and counted.
    out, first = relayed(parser.flush())
    if out:
        if first:
            call.t_first = time.perf_counter()
        await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
    failure = acc.failure()
    if failure is not None:  # the upstream told the client in the stream (relayed as it came)
        call.fail(502, f"upstream stream error: {failure}")
        call.complete = True
        call.t_done = time.perf_counter()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if not saw_done:
        if not acc.finished():
            await _end_stream_with_error(call, send, 502, "the upstream ended the stream before its last chunk")
            return
        # Some servers end a complete answer (every choice has its finish_reason) by closing
        # cleanly without [DONE]: the client has it all; end it the way OpenAI's clients expect.
        # (Messages and Responses streams end with their own last event, which acc has seen.)
        if call.door.done_marker:
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
    rec.http_status = 200
    call.complete = True
    call.t_done = time.perf_counter()
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


async def _end_stream_with_error(call: Call, send: Send, status: int, message: str, code: str | None = None) -> None:
    """The stream has begun (status 200): tell the client in the stream, then end it cleanly."""
    code = code or f"upstream_{status}"
    call.fail(status, f"{code}: {message}" if code == "upstream_timeout" else message)
    err = call.door.error_body(message, "upstream_error", None, code)
    event = encode_event(orjson.dumps(err))
    if call.door.api == "messages":  # Anthropic's SDKs read the event name
        event = b"event: error\n" + event
    await send({"type": "http.response.body", "body": event, "more_body": True})
    call.complete = True
    await send({"type": "http.response.body", "body": b"", "more_body": False})
