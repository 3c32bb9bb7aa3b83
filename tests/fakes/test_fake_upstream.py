"""The fake upstream itself: OpenAI shapes (through the official client), misbehaviours, timing."""

from __future__ import annotations

import base64
import itertools
import struct
import time
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest

from tests.fakes.upstream import CUT_AFTER_CHUNKS, EMBED_DIM, FINGERPRINT, FakeUpstream

TEXT7 = "tok0 tok1 tok2 tok3 tok4 tok5 tok6"
MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there world"}]
PROMPT_TOKENS = (2 + 3) + (3 + 3)  # words + 3 per message


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream() as f:
        yield f


@pytest.fixture
def client(fake):
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-ours", max_retries=0, timeout=10) as c:
        yield c


async def post(fake, path: str, body: Any, headers=None, **kw) -> tuple[int, Any, bytes]:
    """A raw POST on a fresh connection: (status, headers, body bytes)."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector, **kw) as s,
        s.post(fake.base_url + path, data=data, headers=headers) as r,
    ):
        return r.status, r.headers, await r.read()


async def events(fake, body: dict, headers=None, path: str = "/chat/completions") -> list:
    """A streamed request: [(seconds since sent, parsed event or "[DONE]")] in arrival order."""
    out: list[tuple[float, Any]] = []
    async with aiohttp.ClientSession() as s:
        t0 = time.perf_counter()
        async with s.post(fake.base_url + path, json=body, headers=headers) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/event-stream")
            async for line in r.content:
                if line.startswith(b"data: "):
                    data = line[6:].strip()
                    out.append((time.perf_counter() - t0, "[DONE]" if data == b"[DONE]" else orjson.loads(data)))
    return out


def content_times(evs: list) -> list[float]:
    return [t for t, e in evs if e != "[DONE]" and e["choices"] and e["choices"][0]["delta"].get("content")]


# --- happy paths through the official client ------------------------------------------------


def test_cli_port_file_and_models(fake, client):
    assert fake.port > 0 and fake.base_url == f"http://127.0.0.1:{fake.port}/v1"
    models = client.models.list()
    assert {"fake-model", "fail-500", "flaky-2", "cut-stream"} <= {m.id for m in models}
    assert all(m.object == "model" for m in models)


def test_chat_non_streamed(client):
    r = client.chat.completions.create(model="gpt-fake", messages=MSGS, max_tokens=5)
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion" and r.created > 0
    assert r.model == "gpt-fake" and r.system_fingerprint == FINGERPRINT
    (choice,) = r.choices
    assert choice.message.role == "assistant" and choice.message.content == "tok0 tok1 tok2 tok3 tok4"
    assert choice.finish_reason == "length" and choice.index == 0
    u = r.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (PROMPT_TOKENS, 5, PROMPT_TOKENS + 5)
    assert u.prompt_tokens_details.cached_tokens == 0
    assert u.completion_tokens_details.reasoning_tokens == 0
    r = client.chat.completions.create(model="gpt-fake", messages=MSGS)
    assert r.choices[0].message.content == TEXT7 and r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 7


def test_cached_and_reasoning_models(client):
    r = client.chat.completions.create(model="gpt-fake-cached-reasoning", messages=MSGS)
    assert r.usage.prompt_tokens_details.cached_tokens == PROMPT_TOKENS // 2
    assert r.usage.completion_tokens_details.reasoning_tokens == 2
    r = client.chat.completions.create(model="fake-reasoning", messages=MSGS)
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.completion_tokens_details.reasoning_tokens == 2


def test_chat_streamed_without_usage(client):
    chunks = list(client.chat.completions.create(model="m", messages=MSGS, stream=True))
    first, *middle, last = chunks
    assert first.object == "chat.completion.chunk" and first.id.startswith("chatcmpl-")
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    assert [c.choices[0].delta.content for c in middle] == [f"{' ' if i else ''}tok{i}" for i in range(7)]
    assert last.choices[0].finish_reason == "stop" and not last.choices[0].delta.content
    assert all(c.usage is None and c.id == first.id and c.model == "m" for c in chunks)


def test_chat_streamed_with_usage(client):
    stream = client.chat.completions.create(
        model="m", messages=MSGS, max_tokens=3, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "tok0 tok1 tok2"
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == []
    u = chunks[-1].usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (PROMPT_TOKENS, 3, PROMPT_TOKENS + 3)


async def test_stream_wire_format(fake):
    body = {"model": "m", "messages": MSGS, "max_tokens": 2, "stream": True}
    evs = [e for _, e in await events(fake, body)]
    assert evs[-1] == "[DONE]" and len(evs) == 1 + 2 + 1 + 1  # role, 2 words, finish, [DONE]
    assert all("usage" not in e for e in evs[:-1])
    evs = [e for _, e in await events(fake, {**body, "stream_options": {"include_usage": True}})]
    assert evs[-1] == "[DONE]" and evs[-2]["choices"] == [] and evs[-2]["usage"]["completion_tokens"] == 2
    assert all(e["usage"] is None for e in evs[:-2])  # as OpenAI: "usage": null on the other chunks


def test_completions(client):
    r = client.completions.create(model="base", prompt="one two three", max_tokens=4)
    assert r.id.startswith("cmpl-") and r.object == "text_completion" and r.model == "base"
    assert r.choices[0].text == "tok0 tok1 tok2 tok3" and r.choices[0].finish_reason == "length"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (3, 4)
    stream = client.completions.create(
        model="base", prompt=["a b", "c"], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == TEXT7
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 3


async def test_embeddings(fake, client):
    r = client.embeddings.create(model="emb", input=["a b", "c"])  # the client asks for base64
    assert r.object == "list" and r.model == "emb" and [d.index for d in r.data] == [0, 1]
    a, c = (d.embedding for d in r.data)
    assert len(a) == EMBED_DIM and abs(sum(v * v for v in a) - 1) < 1e-4 and a != c
    assert (r.usage.prompt_tokens, r.usage.total_tokens) == (3, 3)
    status, _, raw = await post(fake, "/embeddings", {"model": "emb", "input": "a b"})
    assert status == 200 and orjson.loads(raw)["data"][0]["embedding"] == a  # floats == base64
    _, _, raw = await post(fake, "/embeddings", {"model": "x", "input": "a b", "encoding_format": "base64"})
    packed = base64.b64decode(orjson.loads(raw)["data"][0]["embedding"])
    assert list(struct.unpack(f"<{EMBED_DIM}f", packed)) == a
    r = client.embeddings.create(model="emb", input=[[1, 2, 3]], dimensions=8)
    assert len(r.data[0].embedding) == 8 and r.usage.prompt_tokens == 3


def test_stats_and_reset(fake):
    fake.reset()
    headers = {"x-custom": "yes"}
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-ours", default_headers=headers) as c:
        list(c.chat.completions.create(model="m", messages=MSGS, stream=True, stream_options={"include_usage": True}))
        c.embeddings.create(model="e", input="x")
    s = fake.stats()
    assert s["total"] == 2 and s["requests"] == {"/v1/chat/completions": 1, "/v1/embeddings": 1}
    assert s["models"] == {"m": 1, "e": 1} and s["last"]["path"] == "/v1/embeddings"
    last = s["last_by_path"]["/v1/chat/completions"]
    assert last["method"] == "POST" and last["body"]["stream_options"] == {"include_usage": True}
    assert last["headers"]["authorization"] == "Bearer sk-ours" and last["headers"]["x-custom"] == "yes"
    assert fake.reset()["total"] == 0 and fake.stats()["last"] is None


async def test_bad_requests(fake):
    status, _, raw = await post(fake, "/chat/completions", b"{oops")
    assert status == 400 and orjson.loads(raw)["error"]["type"] == "invalid_request_error"
    status, _, raw = await post(fake, "/chat/completions", {"messages": []})
    assert status == 400 and orjson.loads(raw)["error"]["param"] == "model"


# --- misbehaviours ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "exc", "kind"),
    [
        ("fail-500", openai.InternalServerError, "server_error"),
        ("fail-400", openai.BadRequestError, "invalid_request_error"),
        ("rate-limited", openai.RateLimitError, "requests"),
    ],
)
def test_errors(client, model, exc, kind):
    with pytest.raises(exc) as info:
        client.chat.completions.create(model=f"gw-{model}", messages=MSGS)
    assert info.value.body["type"] == kind and info.value.body["message"]
    if model == "rate-limited":
        assert info.value.response.headers["retry-after"] == "1"


async def test_flaky_counts_per_model(fake):
    body = {"model": "flaky-2-a", "messages": MSGS}
    statuses = [(await post(fake, "/chat/completions", body))[0] for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    status, _, raw = await post(fake, "/embeddings", {"model": "flaky-1-b", "input": "x"})
    assert status == 503 and orjson.loads(raw)["error"]["code"] == "service_unavailable"
    assert (await post(fake, "/embeddings", {"model": "flaky-1-b", "input": "x"}))[0] == 200


async def test_hang(fake):
    with pytest.raises(TimeoutError):
        await post(
            fake, "/chat/completions", {"model": "hang", "messages": MSGS}, timeout=aiohttp.ClientTimeout(total=0.3)
        )


async def test_slow_stream(fake):
    evs = await events(fake, {"model": "slow-stream", "messages": MSGS, "max_tokens": 3, "stream": True})
    times = content_times(evs)
    assert len(times) == 3 and evs[-1][1] == "[DONE]"
    assert all(0.27 <= b - a <= 0.45 for a, b in itertools.pairwise(times))


async def test_cut_stream(fake):
    seen: list[bytes] = []
    body = {"model": "cut-stream", "messages": MSGS, "stream": True}
    with pytest.raises(aiohttp.ClientPayloadError):
        async with aiohttp.ClientSession() as s, s.post(fake.base_url + "/chat/completions", json=body) as r:
            assert r.status == 200
            async for line in r.content:
                seen.append(line)
    data = [orjson.loads(x[6:]) for x in seen if x.startswith(b"data: {")]
    assert [d["choices"][0]["delta"].get("content") for d in data] == ["", "tok0", " tok1", " tok2"]
    assert len(data) == 1 + CUT_AFTER_CHUNKS and not any(b"[DONE]" in x for x in seen)
    with pytest.raises(aiohttp.ClientPayloadError):  # non-streamed: half the declared body
        await post(fake, "/chat/completions", {"model": "cut-stream", "messages": MSGS})


def test_cut_stream_seen_by_openai_client(client):
    stream = client.chat.completions.create(model="cut-stream", messages=MSGS, stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError):  # httpx saw the body end early
        for chunk in stream:
            got.append(chunk.choices[0].delta.content)
    assert got == ["", "tok0", " tok1", " tok2"]


async def test_malformed(fake):
    status, headers, raw = await post(fake, "/chat/completions", {"model": "malformed", "messages": MSGS})
    assert (status, raw) == (200, b'{"not json') and headers["Content-Type"] == "application/json"
    body = {"model": "malformed", "messages": MSGS, "stream": True}
    status, _, raw = await post(fake, "/chat/completions", body)
    assert status == 200 and raw.startswith(b'data: {"not json\n\n')


async def test_reset(fake, client):
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(fake, "/chat/completions", {"model": "reset", "messages": MSGS})
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="reset", messages=MSGS)
    assert (await post(fake, "/chat/completions", {"model": "m", "messages": MSGS}))[0] == 200


async def test_no_usage(fake, client):
    r = client.chat.completions.create(model="no-usage", messages=MSGS)
    assert r.usage is None and r.choices[0].message.content == TEXT7
    _, _, raw = await post(fake, "/chat/completions", {"model": "no-usage", "messages": MSGS})
    assert "usage" not in orjson.loads(raw)
    body = {"model": "no-usage", "messages": MSGS, "stream": True, "stream_options": {"include_usage": True}}
    evs = [e for _, e in await events(fake, body)]
    assert evs[-1] == "[DONE]" and all("usage" not in e and e["choices"] for e in evs[:-1])
    _, _, raw = await post(fake, "/embeddings", {"model": "no-usage", "input": "x"})
    assert "usage" not in orjson.loads(raw)


# --- timing ------------------------------------------------------------------------------


async def test_timing_from_headers(fake):
    headers = {"x-fake-ttft-ms": "50", "x-fake-itl-ms": "10"}
    evs = await events(fake, {"model": "m", "messages": MSGS, "max_tokens": 10, "stream": True}, headers)
    times = content_times(evs)
    assert len(times) == 10
    assert 0.045 <= times[0] <= 0.15, times[0]
    itl = (times[-1] - times[0]) / 9
    assert 0.009 <= itl <= 0.02, itl
    t0 = time.perf_counter()
    status, _, _ = await post(fake, "/chat/completions", {"model": "m", "messages": MSGS, "max_tokens": 10}, headers)
    elapsed = time.perf_counter() - t0
    assert status == 200 and 0.135 <= elapsed <= 0.3, elapsed  # TTFT + 9 x ITL


async def test_timing_from_env():
    with FakeUpstream(env={"FAKE_TTFT_MS": "50", "FAKE_ITL_MS": "10"}) as slow:
        assert slow.stats()["config"] == {"ttft_ms": 50.0, "itl_ms": 10.0}
        body = {"model": "m", "messages": MSGS, "max_tokens": 5}
        t0 = time.perf_counter()
        assert (await post(slow, "/chat/completions", body))[0] == 200
        assert 0.09 <= time.perf_counter() - t0 <= 0.25  # 50 + 4 x 10 ms
        times = content_times(await events(slow, {**body, "stream": True}))
        assert 0.045 <= times[0] <= 0.15 and 0.035 <= times[-1] - times[0] <= 0.1
        t0 = time.perf_counter()  # headers override the environment
        assert (await post(slow, "/chat/completions", body, {"x-fake-ttft-ms": "0", "x-fake-itl-ms": "0"}))[0] == 200
        assert time.perf_counter() - t0 < 0.05


def test_the_request_log_keeps_every_request_and_unknown_paths_are_logged_404s(fake, client) -> None:
    fake.reset()
    client.chat.completions.create(model="fake-model", messages=MSGS, extra_headers={"x-probe": "1"})
    with pytest.raises(openai.NotFoundError):
        client.post("/nothing/here?x=1", body={"a": 1}, cast_to=dict)
    log = fake.request_log()
    assert [(e["method"], e["path"]) for e in log] == [("POST", "/v1/chat/completions"), ("POST", "/v1/nothing/here")]
    assert log[0]["headers"]["x-probe"] == "1" and log[0]["body"]["model"] == "fake-model"
    assert log[1]["query"] == "x=1"


def schema(arg: str) -> dict[str, Any]:
    return {"type": "object", "properties": {arg: {"type": "string"}}, "required": [arg]}


def test_a_tool_call_model_runs_one_tool_loop_on_both_agent_apis(fake) -> None:
    """``tool-call``: a call of the named tool with name=value arguments, then the tool's result quoted."""
    tools = [
        {"type": "function", "name": "other", "parameters": {}},
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {"properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    ]
    oai = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    first = oai.responses.create(model="m-tool-call", input="use get_weather city=Oslo", tools=tools)  # type: ignore[arg-type]
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather" and call.arguments == '{"city":"Oslo"}'
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "cold"}
    again = oai.responses.create(model="m-tool-call", input=[result], tools=tools)  # type: ignore[arg-type,list-item]
    assert again.output_text == "The tool said: cold"

    claude = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0)
    mtools = [
        {"name": "Read", "input_schema": {"properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}}
    ]
    msgs: list[Any] = [{"role": "user", "content": "Use Read"}]
    with claude.messages.stream(model="m-tool-call", max_tokens=9, messages=msgs, tools=mtools) as stream:  # type: ignore[arg-type]
        use = stream.get_final_message()
    assert use.stop_reason == "tool_use"
    [block] = use.content
    assert block.type == "tool_use" and block.name == "Read" and block.input == {"file_path": "Paris"}
    msgs += [
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "hi there"}]},
    ]
    answer = claude.messages.create(model="m-tool-call", max_tokens=9, messages=msgs, tools=mtools)  # type: ignore[arg-type]
    assert answer.content[0].text == "The tool said: hi there"  # type: ignore[union-attr]
