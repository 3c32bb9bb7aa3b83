"""Fake Anthropic Messages and OpenAI Responses upstreams (routes added to the fake upstream).

Exact, known usage: ``DOOR_USAGE`` below; a model naming ``cached`` adds cache reads and writes
(5 min and 1 h on Messages), ``reasoning`` adds reasoning tokens (Responses), ``tool-call`` runs a
one-tool agent loop (tests/fakes/tool_calls.py). The text is
"tok0 … tok{N-1}" (N = ``max_tokens`` / ``max_output_tokens``, else 7). The fake upstream's
misbehaviours (fail-400, fail-500, slow-stream, …) apply; Messages errors are in Anthropic's shape.
A model naming ``stream-error`` fails mid-stream: an ``error`` event after the first text (Messages),
``response.failed`` carrying the usage so far (Responses).
``background: true`` (Responses) answers ``queued`` without usage; the stored response
is ``in_progress`` for BACKGROUND_POLLS retrieves, then ``completed`` with its usage.
Env ``FAKE_RESPONSE_PREFIX`` names the response ids ``resp_<prefix>N`` (two fakes apart);
``FAKE_STRICT_PREVIOUS=1`` answers a ``previous_response_id`` this fake does not hold with OpenAI's
400 (as a real upstream does: only it knows its ids).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from tests.fakes import tool_calls

if TYPE_CHECKING:
    from tests.fakes.upstream import FakeServer

INPUT_TOKENS = 21  # uncached input, whatever the request
CACHE_READ = 300
CACHE_WRITE_5M = 80
CACHE_WRITE_1H = 40
REASONING = 3
BACKGROUND_POLLS = 2
TOOL_ARGS = {"city": tool_calls.ARGUMENT}  # what a ``tool-call`` model passes a one-city tool
_SSE = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_ids = itertools.count(1)


def messages_usage(n: int, cached: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": INPUT_TOKENS, "output_tokens": n}
    if cached:
        usage["cache_read_input_tokens"] = CACHE_READ
        usage["cache_creation_input_tokens"] = CACHE_WRITE_5M + CACHE_WRITE_1H
        usage["cache_creation"] = {
            "ephemeral_5m_input_tokens": CACHE_WRITE_5M,
            "ephemeral_1h_input_tokens": CACHE_WRITE_1H,
        }
    else:
        usage["cache_read_input_tokens"] = 0
        usage["cache_creation_input_tokens"] = 0
    return usage


def responses_usage(n: int, cached: bool, reasoning: bool) -> dict[str, Any]:
    prompt = INPUT_TOKENS + (CACHE_READ if cached else 0)
    out = n + (REASONING if reasoning else 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": CACHE_READ if cached else 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": REASONING if reasoning else 0},
        "total_tokens": prompt + out,
    }


def _event(name: str, obj: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def _anthropic_error(resp: web.Response) -> web.Response:
    err = orjson.loads(resp.body)["error"]  # type: ignore[arg-type]
    kind = {400: "invalid_request_error", 429: "rate_limit_error"}.get(resp.status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": err["message"]}}
    return web.Response(status=resp.status, body=orjson.dumps(body), content_type="application/json")


class Doors:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.stored: dict[str, dict[str, Any]] = {}  # responses by id (GET/DELETE/input_items)
        self.prefix = os.environ.get("FAKE_RESPONSE_PREFIX", "fake")
        self.strict_previous = os.environ.get("FAKE_STRICT_PREVIOUS") == "1"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_get("/v1/responses/{id}", self.get_response)
        app.router.add_delete("/v1/responses/{id}", self.delete_response)
        app.router.add_get("/v1/responses/{id}/input_items", self.input_items)
        app.router.add_post("/v1/responses/{id}/cancel", self.cancel)

    async def _begin(self, request: web.Request) -> tuple[dict, frozenset, float] | web.Response:
        begun = await self.server._begin(request)
        if isinstance(begun, web.Response) and begun.status >= 400 and request.path.startswith("/v1/messages"):
            return _anthropic_error(begun)
        return begun

    # -- Messages ---------------------------------------------------------------------------
    async def messages(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request)
        if isinstance(begun, web.StreamResponse):
            return begun
        body, flags, _ = begun
        n = body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else 7
        n = min(n, 7) if n > 0 else 7
        usage = messages_usage(n, "cached" in flags)
        msg_id = f"msg_fake{next(_ids)}"
        head = {"id": msg_id, "type": "message", "role": "assistant", "model": body["model"]}
        text = " ".join(f"tok{i}" for i in range(n))
        use = tool_calls.tool_use(body, msg_id) if tool_calls.wanted(body) else None
        if use is not None and (result := tool_calls.tool_result(body)) is not None:
            text, use = tool_calls.ANSWER_PREFIX + result, None
        stop = "tool_use" if use else "end_turn"
        if not body.get("stream"):
            answer = {
                **head,
                "content": [use or {"type": "text", "text": text}],
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage,
            }
            return web.json_response(answer)
        itl = 0.3 if "slow-stream" in flags else 0.0
        start_usage = {**usage, "output_tokens": 1}
        parts = [
            _event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        **head,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            ),
            _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {**use, "input": {}} if use else {"type": "text", "text": ""},
                },
            ),
            _event("ping", {"type": "ping"}),
        ]
        deltas = (
            [{"type": "input_json_delta", "partial_json": orjson.dumps(use["input"]).decode()}]
            if use
            else [{"type": "text_delta", "text": f"{' ' if i else ''}{w}"} for i, w in enumerate(text.split(" "))]
        )
        for delta in deltas:
            parts.append(_event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
        if "stream-error" in body["model"]:
            err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            return await self._stream(request, [*parts[:4], _event("error", err)], itl)
        parts += [
            _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": n},
                },
            ),
            _event("message_stop", {"type": "message_stop"}),
        ]
        return await self._stream(request, parts, itl)

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request)
        if isinstance(begun, web.StreamResponse):
            return begun
        return web.json_response({"input_tokens": INPUT_TOKENS})

    # -- Responses --------------------------------------------------------------------------
    async def responses(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request)
        if isinstance(begun, web.StreamResponse):
            return begun
        body, flags, _ = begun
        prev = body.get("previous_response_id")
        if self.strict_previous and prev is not None and prev not in self.stored:
            error = {
                "message": f"Previous response with id '{prev}' not found.",
                "type": "invalid_request_error",
                "param": "previous_response_id",
                "code": "previous_response_not_found",
            }
            return web.json_response({"error": error}, status=400)
        n = body.get("max_output_tokens") if isinstance(body.get("max_output_tokens"), int) else 7
        n = min(n, 7) if n > 0 else 7
        rid = f"resp_{self.prefix}{next(_ids)}"
        text = " ".join(f"tok{i}" for i in range(n))
        call = tool_calls.function_call(body, rid) if tool_calls.wanted(body) else None
        if call is not None and (result := tool_calls.tool_output(body)) is not None:
            text, call = tool_calls.ANSWER_PREFIX + result, None
        item = {
            "id": f"msg_{rid}",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        base = {
            "id": rid,
            "object": "response",
            "created_at": 1_700_000_000,
            "model": body["model"],
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "previous_response_id": body.get("previous_response_id"),
            "background": body.get("background"),
        }
        final = {
            **base,
            "status": "completed",
            "output": [call or item],
            "usage": responses_usage(n, "cached" in flags, "reasoning" in flags),
        }
        self.stored[rid] = {**final, "_input": body.get("input")}
        if body.get("background") and not body.get("stream"):
            self.stored[rid]["_polls"] = BACKGROUND_POLLS
            return web.json_response({**base, "status": "queued", "usage": None})
        if not body.get("stream"):
            return web.json_response(final)
        seq = itertools.count()

        def ev(kind: str, **fields: Any) -> bytes:
            return _event(kind, {"type": kind, "sequence_number": next(seq), **fields})

        begin = [
            ev("response.created", response={**base, "status": "in_progress"}),
            ev("response.in_progress", response={**base, "status": "in_progress"}),
        ]
        if call is not None:
            done = ev("response.completed", response=final)
            return await self._stream(request, [*begin, *tool_calls.call_events(ev, call), done], 0.0)
        empty_item = {**item, "status": "in_progress", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        ids = {"item_id": item["id"], "output_index": 0}
        parts = [
            *begin,
            ev("response.output_item.added", output_index=0, item=empty_item),
            ev("response.content_part.added", **ids, content_index=0, part=part),
        ]
        for i, word in enumerate(text.split(" ")):
            parts.append(
                ev("response.output_text.delta", **ids, content_index=0, delta=f"{' ' if i else ''}{word}", logprobs=[])
            )
        if "stream-error" in body["model"]:
            failed = {
                **final,
                "status": "failed",
                "output": [],
                "error": {"code": "server_error", "message": "The model failed."},
            }
            return await self._stream(request, [*parts[:5], ev("response.failed", response=failed)], 0.0)
        parts += [
            ev("response.output_text.done", **ids, content_index=0, text=text, logprobs=[]),
            ev("response.content_part.done", **ids, content_index=0, part={**part, "text": text}),
            ev("response.output_item.done", output_index=0, item=item),
            ev("response.completed", response=final),
        ]
        return await self._stream(request, parts, 0.3 if "slow-stream" in flags else 0.0)

    def _found(self, request: web.Request) -> dict[str, Any] | web.Response:
        self.server._record(request, None)
        rid = request.match_info["id"]
        if rid not in self.stored:
            body = {
                "error": {
                    "message": f"Response with id '{rid}' not found.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
            return web.json_response(body, status=404)
        return self.stored[rid]

    async def get_response(self, request: web.Request) -> web.Response:
        found = self._found(request)
        if isinstance(found, web.Response):
            return found
        if found.get("_polls"):  # a background response, still running
            found["_polls"] -= 1
            return web.json_response({**_public(found), "status": "in_progress", "output": [], "usage": None})
        return web.json_response(_public(found))

    async def delete_response(self, request: web.Request) -> web.Response:
        found = self._found(request)
        if isinstance(found, web.Response):
            return found
        del self.stored[found["id"]]
        return web.json_response({"id": found["id"], "object": "response", "deleted": True})

    async def input_items(self, request: web.Request) -> web.Response:
        found = self._found(request)
        if isinstance(found, web.Response):
            return found
        inp = found["_input"]
        items = [
            {
                "id": "in_1",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_text", "text": inp if isinstance(inp, str) else ""}],
            }
        ]
        return web.json_response(
            {"object": "list", "data": items, "first_id": "in_1", "last_id": "in_1", "has_more": False}
        )

    async def cancel(self, request: web.Request) -> web.Response:
        found = self._found(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response(_public(found))

    async def _stream(self, request: web.Request, parts: list[bytes], itl: float) -> web.StreamResponse:
        resp = web.StreamResponse(headers=_SSE)
        with contextlib.suppress(ConnectionError):
            await resp.prepare(request)
            if itl <= 0:
                await resp.write(b"".join(parts))
            else:
                for part in parts:
                    await resp.write(part)
                    await asyncio.sleep(itl)
        return resp


def _public(stored: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stored.items() if not k.startswith("_")}
