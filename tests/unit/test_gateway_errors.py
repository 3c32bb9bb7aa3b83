"""The gateway under bad input, failing upstreams and clients that hang up.

Every bad request gets OpenAI's error shape with the right status (never a 500 for bad input), every
call that names a deployment is recorded, and the gateway keeps working afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.helpers import (
    CannedResponse,
    Harness,
    MemoryUpstream,
    UpstreamCall,
    chat_chunks,
    chat_completion,
    default_answer,
    running_app,
    sqlite_url,
    sse,
    usage_dict,
)

from modelmeter.metering import tokens
from modelmeter.upstreams.client import UpstreamError

BASE = "http://upstream.test/v1"
DEPLOYMENTS = [
    {"name": "gpt", "model": "gpt-4o-mini", "provider": "openai", "api_base": BASE},
    {"name": "smollm2-135m-instruct", "provider": "local"},  # never started here: "still starting"
]
MSGS = [{"role": "user", "content": "Say hello."}]
LIMIT = 4096


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_app(sqlite_url(tmp_path / "err.db"), DEPLOYMENTS, MemoryUpstream(), max_body_bytes=LIMIT) as h:
        yield h


def error_of(res: Any, status: int, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    assert res.status == status, (res.status, res.body)
    assert res.headers["content-type"] == "application/json"
    body = res.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    err = body["error"]
    assert isinstance(err["message"], str) and err["message"] and isinstance(err["type"], str)
    if code is not None:
        assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return dict(err)


async def assert_still_works(gw: Harness) -> None:
    gw.upstream.respond = default_answer
    res = await gw.chat({"model": "gpt", "messages": MSGS})
    assert res.status == 200 and res.json()["choices"][0]["message"]["content"] == "Hello there!"
    rec = await gw.record()
    assert rec["status"] == "success" and rec["completion_tokens"] == 3


# --- bad requests ---------------------------------------------------------------------------

UNRECORDED = [  # no (known) deployment named: nothing to record
    (b"{not json", 400, "invalid_json", None),
    (b"", 400, None, None),
    (b"[1, 2]", 400, "invalid_json", None),
    (b'"gpt"', 400, "invalid_json", None),
    (b"\xff\xfe", 400, "invalid_json", None),
    ({"messages": MSGS}, 400, "missing_required_parameter", "model"),
    ({"model": 5, "messages": MSGS}, 400, "invalid_type", "model"),
    ({"model": "", "messages": MSGS}, 400, "invalid_type", "model"),
    ({"model": "nope", "messages": MSGS}, 404, "model_not_found", "model"),
]


@pytest.mark.parametrize(("body", "status", "code", "param"), UNRECORDED)
async def test_bad_bodies(gw: Harness, body: Any, status: int, code: str | None, param: str | None) -> None:
    err = error_of(
        await gw.chat(body) if isinstance(body, dict) else await gw.request("POST", "/v1/chat/completions", body),
        status,
        code,
        param,
    )
    assert err["type"] in ("invalid_request_error", "not_found_error")
    assert gw.upstream.calls == [] and gw.submitted == 0


RECORDED = [  # a known deployment: the bad request is recorded as an error
    ("/v1/chat/completions", {}, "missing_required_parameter", "messages"),
    ("/v1/chat/completions", {"messages": []}, "invalid_type", "messages"),
    ("/v1/chat/completions", {"messages": "hi"}, "invalid_type", "messages"),
    ("/v1/chat/completions", {"messages": [{"content": "no role"}]}, "invalid_type", "messages[0]"),
    ("/v1/chat/completions", {"messages": MSGS, "stream": "yes"}, "invalid_type", "stream"),
    ("/v1/chat/completions", {"messages": MSGS, "max_tokens": 0}, "invalid_value", "max_tokens"),
    ("/v1/chat/completions", {"messages": MSGS, "max_tokens": "5"}, "invalid_value", "max_tokens"),
    ("/v1/chat/completions", {"messages": MSGS, "n": True}, "invalid_value", "n"),
    (
        "/v1/chat/completions",
        {"messages": MSGS, "stream": True, "stream_options": []},
        "invalid_type",
        "stream_options",
    ),
    ("/v1/chat/completions", {"messages": MSGS, "metadata": "x"}, "invalid_type", "metadata"),
    ("/v1/completions", {}, "missing_required_parameter", "prompt"),
    ("/v1/completions", {"prompt": 5}, "invalid_type", "prompt"),
    ("/v1/embeddings", {}, "missing_required_parameter", "input"),
    ("/v1/embeddings", {"input": ""}, "invalid_type", "input"),
    ("/v1/embeddings", {"input": "x", "stream": True}, "invalid_value", "stream"),
]


@pytest.mark.parametrize(("path", "body", "code", "param"), RECORDED)
async def test_bad_fields_are_recorded(gw: Harness, path: str, body: dict[str, Any], code: str, param: str) -> None:
    err = error_of(await gw.request("POST", path, {"model": "gpt", **body}), 400, code, param)
    assert gw.upstream.calls == []
    rec = await gw.record()
    assert rec["status"] == "error" and rec["http_status"] == 400 and rec["error"] == err["message"]
    assert rec["prompt_tokens"] == rec["completion_tokens"] == 0 and rec["spend"] == 0
    assert rec["response"] == {"error": err} and rec["request"] == {"model": "gpt", **body}


async def test_body_over_the_limit(gw: Harness) -> None:
    big = {"model": "gpt", "messages": [{"role": "user", "content": "x" * LIMIT}]}
    error_of(await gw.chat(big), 413, "request_too_large")
    # without a content-length (chunked upload): counted as it arrives
    error_of(await gw.chat(big, body_parts=4), 413, "request_too_large")
    assert gw.upstream.calls == []
    small = {"model": "gpt", "messages": [{"role": "user", "content": "x" * (LIMIT - 100)}]}
    assert (await gw.chat(small, body_parts=3)).status == 200


async def test_methods_and_paths(gw: Harness) -> None:
    error_of(await gw.request("GET", "/v1/chat/completions"), 405, "method_not_allowed")
    error_of(await gw.request("POST", "/v1/models", {}), 405, "method_not_allowed")
    error_of(await gw.request("POST", "/v1/audio/speech", {"model": "gpt"}), 404, "unknown_url")
    assert gw.submitted == 0


async def test_deeply_nested_body_does_not_break_the_writer(gw: Harness) -> None:
    deep = b"[" * 300 + b'"x"' + b"]" * 300  # orjson reads 1024 levels but writes only 254
    msgs = orjson.dumps(MSGS)
    res = await gw.request(
        "POST", "/v1/chat/completions", b'{"model": "gpt", "messages": %s, "extra": %s}' % (msgs, deep)
    )
    error_of(res, 400, "invalid_json")
    rec = await gw.record()
    assert rec["status"] == "error" and rec["http_status"] == 400
    assert "not stored" in rec["request"]["modelmeter_note"]
    res = await gw.request(
        "POST", "/v1/chat/completions", b'{"model": "gpt", "messages": %s, "metadata": {"d": %s}}' % (msgs, deep)
    )
    error_of(res, 400, "invalid_json")
    assert "not stored" in (await gw.record())["metadata"]["modelmeter_note"]
    await assert_still_works(gw)


@pytest.mark.parametrize(
    ("metadata", "header", "tags"),
    [
        ({"tags": 5}, None, []),
        ({"tags": [{"a": 1}, "ok", 3, "ok"]}, None, ["ok"]),
        ({"tags": "a, b"}, None, ["a", "b"]),
        ({"tags": ["from-body"]}, "from-header", ["from-header"]),
        ({}, ",".join(f"t{i}" for i in range(30)), [f"t{i}" for i in range(20)]),
    ],
)
async def test_any_tags_store_cleanly(
    gw: Harness, metadata: dict[str, Any], header: str | None, tags: list[str]
) -> None:
    headers = {"x-modelmeter-tags": header} if header else {}
    assert (await gw.chat({"model": "gpt", "messages": MSGS, "metadata": metadata}, headers=headers)).status == 200
    rec = await gw.record()
    assert rec["tags"] == tags and rec["status"] == "success"
    if tags:
        assert rec["metadata"]["tags"] == tags
    await assert_still_works(gw)


# --- failing upstreams ----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status"), [("connect", 502), ("timeout", 504), ("protocol", 502)])
async def test_upstream_unreachable_or_slow(gw: Harness, kind: str, status: int) -> None:
    gw.upstream.respond = lambda call: UpstreamError(kind, f"upstream {kind} trouble")
    for stream in (False, True):
        err = error_of(await gw.chat({"model": "gpt", "messages": MSGS, "stream": stream}), status, f"upstream_{kind}")
        assert err["type"] == "upstream_error" and err["message"] == f"upstream {kind} trouble"
        rec = await gw.record()
        assert (rec["status"], rec["http_status"], rec["error"]) == ("error", status, err["message"])
        assert rec["stream"] is stream and rec["completion_tokens"] == 0
    gw.upstream.respond = lambda call: CannedResponse(200, b"{}", error=UpstreamError("timeout", "slow body"))
    error_of(await gw.chat({"model": "gpt", "messages": MSGS}), 504, "upstream_timeout")
    gw.upstream.respond = MemoryUpstream().respond
    await assert_still_works(gw)


async def test_upstream_timeouts_come_from_the_deployment(tmp_path: Path) -> None:
    deps = [{**DEPLOYMENTS[0], "timeout": 1.5, "connect_timeout": 0.5}]
    async with running_app(sqlite_url(tmp_path / "t.db"), deps) as h:
        await h.chat({"model": "gpt", "messages": MSGS})
        assert (h.upstream.last.timeouts.total, h.upstream.last.timeouts.connect) == (1.5, 0.5)


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_errors_pass_through(gw: Harness, stream: bool) -> None:
    upstream_err = {
        "error": {"message": "Rate limit reached.", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    }
    gw.upstream.respond = lambda call: CannedResponse(429, upstream_err, headers={"retry-after": "7"})
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": stream})
    assert res.status == 429 and res.json() == upstream_err and res.headers["retry-after"] == "7"
    rec = await gw.record()
    assert (rec["status"], rec["http_status"], rec["error"]) == ("error", 429, "Rate limit reached.")
    assert rec["response"] == upstream_err

    gw.upstream.respond = lambda call: CannedResponse(
        500, {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}
    )
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": stream})
    assert res.status == 500 and res.json()["error"]["message"] == "boom"
    assert (await gw.record())["http_status"] == 500


async def test_upstream_error_not_in_openai_shape_is_reshaped(gw: Harness) -> None:
    gw.upstream.respond = lambda call: CannedResponse(
        503, b"<html>Bad Gateway</html>", headers={"content-type": "text/html"}
    )
    err = error_of(await gw.chat({"model": "gpt", "messages": MSGS}), 503, "upstream_503")
    assert "Bad Gateway" in err["message"]
    gw.upstream.respond = lambda call: CannedResponse(400, {"error": "model is required"})
    err = error_of(await gw.chat({"model": "gpt", "messages": MSGS}), 400, "upstream_400")
    assert err["message"] == "model is required"
    assert (await gw.record())["error"] == "model is required"


@pytest.mark.parametrize("body", [b'{"not json', b"[1,2]", b""])
async def test_upstream_success_that_is_not_json(gw: Harness, body: bytes) -> None:
    gw.upstream.respond = lambda call: CannedResponse(200, body)
    error_of(await gw.chat({"model": "gpt", "messages": MSGS}), 502, "upstream_invalid_json")
    rec = await gw.record()
    assert rec["status"] == "error" and rec["http_status"] == 502
    await assert_still_works(gw)


async def test_stream_requested_but_upstream_answers_json(gw: Harness) -> None:
    gw.upstream.respond = lambda call: CannedResponse(200, {"id": "x", "choices": [], "usage": usage_dict(2, 1)})
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": True})
    assert res.status == 200 and res.json()["id"] == "x"
    rec = await gw.record()
    assert rec["status"] == "success" and rec["completion_tokens"] == 1


async def test_stream_cut_by_the_upstream(gw: Harness) -> None:
    chunks = chat_chunks("gpt-4o-mini", ["The", " quick", " fox"])[:3]  # role, "The", " quick"
    gw.upstream.respond = lambda call: CannedResponse(
        200, chunks=[sse(*chunks, done=False)], error=UpstreamError("protocol", "the upstream broke off")
    )
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": True})
    assert res.status == 200 and res.complete  # the client's stream ends cleanly ...
    events = res.events()
    assert events[:3] == chunks
    assert events[3]["error"]["message"] == "the upstream broke off"  # ... saying why
    rec = await gw.record()
    assert (rec["status"], rec["http_status"], rec["error"]) == ("error", 502, "the upstream broke off")
    assert rec["completion_tokens"] == tokens.count_text("The quick", "gpt-4o-mini") > 0
    assert rec["usage_estimated"] is True and rec["prompt_tokens"] > 0
    assert rec["response"]["choices"][0]["message"]["content"] == "The quick"
    assert 0 < rec["ttft_ms"] <= rec["latency_ms"]


async def test_a_complete_stream_without_done_is_a_success(gw: Harness) -> None:
    # Issue 11 item 2: some servers end a complete stream (finish_reason, then usage) by closing.
    chunks = chat_chunks("gpt-4o-mini", usage=usage_dict(5, 3))
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=[sse(*chunks, done=False)])
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": True})
    assert res.complete and res.events()[-1] == "[DONE]"
    assert not any(isinstance(e, dict) and "error" in e for e in res.events())
    rec = await gw.record()
    assert (rec["status"], rec["http_status"], rec["error"]) == ("success", 200, None)
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["usage_estimated"]) == (5, 3, False)


async def test_a_stream_cut_before_its_final_chunk_stays_an_error(gw: Harness) -> None:
    chunks = chat_chunks("gpt-4o-mini")[:-1]  # no finish_reason chunk
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=[sse(*chunks, done=False)])
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": True})
    assert res.complete and res.events()[-1]["error"]["code"] == "upstream_502"
    rec = await gw.record()
    assert rec["status"] == "error" and rec["http_status"] == 502


async def test_garbage_stream_events_do_not_crash(gw: Harness) -> None:
    garbage = [
        b'{"not json',
        b"[1,2,3]",
        b"42",
        b'{"choices": "nope"}',
        b'{"choices": [7, null]}',
        b'{"id": 5, "model": [], "choices": [{"index": "a", "delta": "str"}]}',
        b'{"choices": [{"index": 0, "delta": {"content": 5, "tool_calls": [1, {"function": 2}]}}]}',
        b'{"choices": [{"index": [], "delta": {"role": 3, "content": "ok"}, "finish_reason": 1}]}',
        b'{"choices": [], "usage": {"prompt_tokens": 18446744073709551615, "completion_tokens": -3}}',
    ]
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=[sse(*garbage)])
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": True})
    assert res.status == 200 and res.complete and res.events()[-1] == "[DONE]"
    rec = await gw.record()
    assert rec["status"] == "success" and rec["request_id"] == rec["id"] and rec["model_id"] is None
    assert rec["completion_tokens"] == 0 and 0 < rec["prompt_tokens"] < 2**31
    assert rec["response"]["choices"][0]["message"]["content"] == "ok"
    await assert_still_works(gw)


async def test_unexpected_failure_is_answered_and_recorded(gw: Harness) -> None:
    gw.upstream.respond = lambda call: RuntimeError("a bug in the client")
    err = error_of(await gw.chat({"model": "gpt", "messages": MSGS}), 500, "internal_error")
    assert "a bug" not in err["message"]
    rec = await gw.record()
    assert rec["status"] == "error" and rec["http_status"] == 500 and "RuntimeError" in rec["error"]
    gw.upstream.respond = MemoryUpstream().respond
    await assert_still_works(gw)


async def test_embedded_model_not_started_yet(gw: Harness) -> None:
    err = error_of(await gw.chat({"model": "smollm2-135m-instruct", "messages": MSGS}), 503, "model_loading")
    assert err["type"] == "service_unavailable"
    rec = await gw.record()
    assert rec["deployment"] == "smollm2-135m-instruct" and rec["http_status"] == 503
    assert rec["api_base"] == "embedded" and rec["provider"] == "local"


# --- clients that hang up -------------------------------------------------------------------


async def test_client_disconnects_mid_stream(gw: Harness) -> None:
    chunks = chat_chunks("gpt-4o-mini", [f" w{i}" for i in range(20)], usage=usage_dict(5, 20))
    gw.upstream.respond = lambda call: CannedResponse(200, chunks=[sse(c, done=False) for c in chunks], delay=0.01)
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": True}, disconnect_after=3)
    assert not res.complete
    rec = await gw.record()
    assert (rec["status"], rec["http_status"], rec["error"]) == ("error", 499, "client_disconnected")
    upstream = gw.upstream.responses[-1]
    assert upstream.closed and upstream.sent_chunks < len(chunks)  # the upstream call was abandoned
    assert rec["completion_tokens"] > 0 and rec["usage_estimated"] is True  # what was produced so far
    assert rec["response"]["choices"][0]["message"]["content"].startswith(" w0 w1")
    assert rec["overhead_ms"] <= rec["latency_ms"] and rec["ttft_ms"] <= rec["latency_ms"]
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]
    await assert_still_works(gw)


async def test_client_disconnects_while_waiting(gw: Harness) -> None:
    # The answer (no usage in it) comes after the client left: the prompt is estimated, not 0.
    gw.upstream.respond = lambda call: CannedResponse(200, {"choices": []}, delay=1)
    res = await gw.chat({"model": "gpt", "messages": MSGS}, disconnect_after_s=0.05)
    assert res.status == 0  # nothing was sent
    rec = await gw.record()
    assert (rec["status"], rec["http_status"], rec["error"]) == ("error", 499, "client_disconnected")
    assert rec["latency_ms"] < 1000 and rec["completion_tokens"] == 0  # the client's wait
    assert rec["prompt_tokens"] > 0 and rec["usage_estimated"] is True
    await assert_still_works(gw)


async def test_a_late_answer_after_a_hang_up_is_recorded_with_its_usage(gw: Harness) -> None:
    body = chat_completion("gpt-4o-mini", usage=usage_dict(5, 3))
    gw.upstream.respond = lambda call: CannedResponse(200, body, delay=0.3)
    res = await gw.chat({"model": "gpt", "messages": MSGS}, disconnect_after_s=0.05)
    assert res.status == 0  # nothing was sent: the client had gone
    rec = await gw.record()
    assert (rec["status"], rec["http_status"], rec["error"]) == ("error", 499, "client_disconnected")
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["usage_estimated"]) == (5, 3, False)
    assert rec["spend"] > 0 and rec["latency_ms"] < 300
    await assert_still_works(gw)


async def test_client_gone_before_the_body_arrived(gw: Harness) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    sent: list[Any] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "query_string": b"",
    }
    await gw.app(scope, receive, send)
    assert sent == [] and gw.submitted == 0


async def test_many_concurrent_calls(gw: Harness) -> None:
    def respond(call: UpstreamCall) -> CannedResponse:
        if call.body.get("stream"):
            return CannedResponse(200, chunks=[sse(*chat_chunks("m", usage=usage_dict(2, 3)))], delay=0.001)
        return CannedResponse(200, orjson.dumps({"id": "x", "choices": [], "usage": usage_dict(2, 3)}), delay=0.01)

    gw.upstream.respond = respond
    results = await asyncio.gather(
        *(gw.chat({"model": "gpt", "messages": MSGS, "stream": i % 2 == 0}) for i in range(60))
    )
    assert all(r.status == 200 and r.complete for r in results)
    rows = await gw.written()
    assert len(rows) == 60 and all(r["status"] == "success" and r["completion_tokens"] == 3 for r in rows)


async def test_client_leaving_right_after_done_is_a_success(gw: Harness) -> None:
    # The openai client stops reading at [DONE] and closes the response at once; an upstream that
    # ends its body a moment after [DONE] (llama.cpp) must not turn that into a hang-up.
    chunks = chat_chunks("gpt-4o-mini", usage=usage_dict(5, 3))
    gw.upstream.respond = lambda call: CannedResponse(
        200, chunks=[sse(*chunks, done=False), b"data: [DONE]\n\n", b""], delay=0.05
    )
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": True}, disconnect_after=2)
    assert res.events()[-1] == "[DONE]"
    rec = await gw.record()
    assert (rec["status"], rec["http_status"], rec["error"]) == ("success", 200, None)
    assert rec["completion_tokens"] == 3


async def test_upstream_breaking_after_done_is_a_success(gw: Harness) -> None:
    chunks = chat_chunks("gpt-4o-mini", usage=usage_dict(5, 3))
    gw.upstream.respond = lambda call: CannedResponse(
        200, chunks=[sse(*chunks)], error=UpstreamError("protocol", "closed late")
    )
    res = await gw.chat({"model": "gpt", "messages": MSGS, "stream": True})
    assert res.complete and res.events()[-1] == "[DONE]"
    rec = await gw.record()
    assert (rec["status"], rec["http_status"]) == ("success", 200)
