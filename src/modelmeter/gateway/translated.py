"""A call whose client API differs from its deployment's upstream API (issue 12 item 3).

The client's body is translated to the upstream's API, sent through the same pooled client with the
same retries, timeouts and limits as a pass-through call (relay.py), and the answer is translated
back: a whole JSON answer at once, a stream event by event as it comes. Usage is read from the
upstream's own answer with the upstream API's reader, so the record holds exactly what the upstream
reported (cache reads and writes, reasoning); the record's bodies are the client's, and what went
upstream is kept beside them. Pass-through calls never come here: their hot path is unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from modelmeter.apis.base import FrontDoor
from modelmeter.apis.chat import CHAT
from modelmeter.apis.messages import MESSAGES
from modelmeter.apis.responses import RESPONSES
from modelmeter.apis.translate import chained
from modelmeter.apis.translate import chat_to_messages as c2m
from modelmeter.apis.translate import chat_to_responses as c2r
from modelmeter.apis.translate import messages_to_chat as m2c
from modelmeter.apis.translate import responses_to_chat as r2c
from modelmeter.apis.translate.chat_stream import MessagesToChatStream
from modelmeter.apis.translate.messages_stream import ChatToMessagesStream
from modelmeter.apis.translate.responses_chat_stream import ResponsesToChatStream
from modelmeter.apis.translate.responses_stream import ChatToResponsesStream
from modelmeter.apis.translate.wire import TranslationError
from modelmeter.config import Deployment
from modelmeter.gateway.errors import APIError, upstream_error_message
from modelmeter.gateway.relay import Call, _post_with_retries, _send_whole
from modelmeter.gateway.response_headers import passed_headers, request_id_header, upstream_request_id, usable_id
from modelmeter.gateway.stream_relay import SSE_HEADERS, UPSTREAM_STATUS
from modelmeter.sse import DONE, EventTooLarge, SSEEvent, SSEParser
from modelmeter.upstreams.client import UpstreamClient, UpstreamError
from modelmeter.upstreams.limits import LimitedResponse, ResponseLimits, scrubber_for

ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}  # Anthropic requires it; chat clients send none


class StreamTranslator(Protocol):
    done: bool

    def feed_data(self, data: bytes) -> bytes: ...
    def finish(self) -> bytes: ...
    def error(self, message: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Pair:
    """One supported direction: client door -> upstream API, and back."""

    upstream: FrontDoor  # the upstream API's door: its usage reader and stream accumulator
    path: str  # the upstream endpoint, after the deployment's base URL
    request: Callable[[Mapping[str, Any], str], dict[str, Any]]  # (client body, upstream model)
    answer: Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]  # (upstream answer, client body)
    stream: Callable[[Mapping[str, Any]], StreamTranslator]  # made with the client body
    headers: Mapping[str, str] | None = None  # sent upstream instead of the client's API headers


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, Mapping) and options.get("include_usage") is True


PAIRS: dict[tuple[str, str], Pair] = {  # (client call type, upstream API)
    ("messages", "chat"): Pair(
        CHAT,
        "/chat/completions",
        m2c.request,
        lambda up, body: m2c.answer(up),
        lambda body: ChatToMessagesStream(),
    ),
    ("responses", "chat"): Pair(
        CHAT,
        "/chat/completions",
        r2c.request,
        r2c.answer,
        ChatToResponsesStream,
    ),
    ("chat", "messages"): Pair(
        MESSAGES,
        "/messages",
        lambda body, model: c2m.request(body, model),
        lambda up, body: c2m.answer(up),
        lambda body: MessagesToChatStream(include_usage=_include_usage(body)),
        ANTHROPIC_VERSION,
    ),
    ("chat", "responses"): Pair(
        RESPONSES,
        "/responses",
        lambda body, model: c2r.request(body, model),
        lambda up, body: c2r.answer(up),
        lambda body: ResponsesToChatStream(include_usage=_include_usage(body)),
    ),
    # No direct translator: through chat, both ways (apis/translate/chained.py).
    ("responses", "messages"): Pair(
        MESSAGES,
        "/messages",
        chained.responses_to_messages_request,
        chained.responses_to_messages_answer,
        chained.responses_to_messages_stream,
        ANTHROPIC_VERSION,
    ),
    ("messages", "responses"): Pair(
        RESPONSES,
        "/responses",
        chained.messages_to_responses_request,
        chained.messages_to_responses_answer,
        chained.messages_to_responses_stream,
    ),
}


def pair_for(door: FrontDoor, api: str, dep: Deployment, path: str) -> Pair:
    """The translation from this door to this upstream API, or a clear 400 (in the door's shape)."""
    pair = PAIRS.get((door.call_type, api))
    if pair is None:
        raise APIError(
            400,
            f"'{dep.name}' speaks the {api} API upstream; translation from {path} is not supported: "
            "call its own endpoint.",
            param="model",
            code="translation_unavailable",
        )
    return pair


async def relay_translated(
    call: Call, pair: Pair, client: UpstreamClient, base: str, dep: Deployment, limits: ResponseLimits
) -> None:
    rec = call.rec
    try:
        sent = pair.request(call.body, dep.model)
    except TranslationError as exc:
        raise APIError(400, exc.message, param=exc.param, code="untranslatable") from None
    rec.upstream_request = sent
    call.api = pair.upstream.api
    call.passed_headers = dict(pair.headers) if pair.headers else None
    try:
        payload = orjson.dumps(sent)
    except orjson.JSONEncodeError:
        raise APIError(400, "The request body is nested too deeply.", code="invalid_json") from None
    posted = await _post_with_retries(call, client, base + pair.path, dep, payload)
    resp = LimitedResponse(posted, limits, scrubber_for(dep.api_key(), call.virtual_key))
    try:
        if rec.stream and resp.status == 200 and resp.headers.get("content-type", "").startswith("text/event-stream"):
            await _stream(call, pair, resp, dep.chunk_timeout, limits.max_event_bytes)
        else:
            await _whole(call, pair, resp)
    finally:
        resp.close()


async def _whole(call: Call, pair: Pair, resp: Any) -> None:
    rec = call.rec
    rec.request_id = upstream_request_id(resp.headers)
    t = time.perf_counter()
    try:
        data: bytes = await resp.read()
    except UpstreamError as exc:
        raise APIError(UPSTREAM_STATUS[exc.kind], exc.message, "upstream_error", code=f"upstream_{exc.kind}") from None
    finally:
        call.upstream_wait += time.perf_counter() - t
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    rec.upstream_response = parsed if parsed is not None else data[:4096].decode("utf-8", "replace")
    if resp.status >= 400:
        # The upstream's error in the client's API's shape, with the upstream's status.
        message, err = upstream_error_message(resp.status, data)
        found = err.get("error")
        e: dict[str, Any] = found if isinstance(found, dict) else {}
        kind = e.get("type") or ("invalid_request_error" if resp.status < 500 else "upstream_error")
        out = call.door.error_body(message, kind, e.get("param"), e.get("code"))
        call.fail(resp.status, message)
        rec.request_id = rec.request_id or rec.id
        rec.response_body = out
        await _send_whole(call, resp.status, orjson.dumps(out), resp.headers)
        return
    if not isinstance(parsed, dict):
        raise APIError(
            502,
            "The upstream answered with a body that is not a JSON object.",
            "upstream_error",
            code="upstream_invalid_json",
        )
    rec.http_status = resp.status
    rec.usage = pair.upstream.usage(parsed.get("usage"))  # as the upstream reported it
    answer = pair.answer(parsed, call.body)
    rec.request_id = rec.request_id or usable_id(answer.get("id")) or rec.id
    rec.model_id = parsed.get("model") if isinstance(parsed.get("model"), str) else None
    rec.response_body = answer
    await _send_whole(call, resp.status, orjson.dumps(answer), resp.headers)


async def _stream(call: Call, pair: Pair, resp: Any, chunk_timeout: float, max_event_bytes: int) -> None:
    """Each upstream event read once by the upstream API's accumulator (usage) and translated; the
    translated events read by the client API's accumulator (the record's body, first-token time)."""
    rec = call.rec
    up_acc = pair.upstream.accumulator(pair.upstream.call_type)
    client_acc = call.door.accumulator(rec.call_type)
    translator = pair.stream(call.body)
    parser, back = SSEParser(max_event_bytes), SSEParser(1 << 30)  # back: our own output
    upstream_id = upstream_request_id(resp.headers)
    passed = passed_headers(resp.headers)

    async def emit(out: bytes, more: bool = True) -> None:
        if out:
            produced = 0
            for event in back.feed(out):
                if event.data is not None and event.data != DONE:
                    produced += client_acc.add(event.data)
            if produced and call.t_first is None:
                call.t_first = time.perf_counter()
        if translator.done:
            call.complete = True  # the client has it all (its last event is in ``out``)
            call.t_done = call.t_done or time.perf_counter()
        if not call.started:
            rec.request_id = upstream_id or usable_id(client_acc.id) or rec.id  # as a whole answer's
            call.started = True
            headers = [*SSE_HEADERS, *passed, request_id_header(rec.request_id)]
            await call.send({"type": "http.response.start", "status": 200, "headers": headers})
        if out or not more:
            await call.send({"type": "http.response.body", "body": out, "more_body": more})

    def translate(events: list[SSEEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            data = event.data
            if data is None:
                continue  # comments and keep-alives: the client's API has its own
            if data.strip() == DONE:
                out.append(translator.finish())
                continue
            up_acc.add(data)
            try:
                out.append(translator.feed_data(data))
            except orjson.JSONDecodeError:
                continue  # not JSON: nothing to translate (the accumulator skipped it too)
        return b"".join(out)

    try:
        failed: UpstreamError | None = None
        chunks = resp.chunks().__aiter__()
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
            except TimeoutError:
                failed = UpstreamError("timeout", f"the upstream sent no chunk for {chunk_timeout:g} s")
                break
            finally:
                call.upstream_wait += time.perf_counter() - t
            try:
                out = translate(parser.feed(chunk))
            except EventTooLarge as exc:
                failed = UpstreamError("event_too_large", str(exc))
                break
            if out:
                await emit(out)
        if failed is None:
            out = translate(parser.flush())
            if out:
                await emit(out)
        failure = up_acc.failure()
        if translator.done and failure is not None:  # the upstream's error event, translated
            call.fail(502, f"upstream stream error: {failure}")
        elif not translator.done and failed is not None:
            call.fail(UPSTREAM_STATUS[failed.kind], failed.message)
            await emit(translator.error(failed.message))
        elif not translator.done and up_acc.finished():  # a complete chat answer without [DONE]
            await emit(translator.finish())
        elif not translator.done:
            message = "the upstream ended the stream before its last chunk"
            call.fail(502, message)
            await emit(translator.error(message))
        if rec.status == "success":
            rec.http_status = 200
        call.complete = True
        call.t_done = call.t_done or time.perf_counter()
        await emit(b"", more=False)
    finally:  # also on a hang-up: the usage so far, the answer so far
        if up_acc.usage.reported:
            rec.usage = up_acc.usage
        rec.model_id = up_acc.model
        rec.request_id = rec.request_id or upstream_id or usable_id(client_acc.id)
        rec.response_text = client_acc.all_text()
        if client_acc.chunks:
            rec.response_body = client_acc.response()
        if up_acc.chunks:
            rec.upstream_response = up_acc.response()
