"""Translation against the embedded model (issue 12): the ``anthropic`` SDK (Messages) and the
``openai`` SDK (Responses) through the gateway to SmolLM2 on llama.cpp, a chat upstream, streamed
and not, each with a tool call; and the ``openai-agents`` SDK's default model running a one-tool
agent on it.

The model is tiny, so the tests assert structure, not wisdom: the tool the client offered is the
one called and its arguments parse as JSON. A forced tool choice (``any`` / ``required``) at
temperature 0 keeps the call deterministic. Every record's tokens are what llama.cpp reported (the stored upstream
answer's usage) and what the client was told.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.helpers import ROOT, ServerProcess, sqlite_url, write_config

MODEL = "smollm2-135m-instruct"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
ASK = "What is the weather in Paris?"
MAX_TOKENS = 64  # a call with its arguments takes ~30 tokens

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("embedded-translated")
    config = write_config(
        tmp / "modelmeter.toml",
        database=sqlite_url(tmp / "mm.db"),
        deployments=[{"name": MODEL, "provider": "local"}],
        local_threads=1,
    )
    with ServerProcess(config, log_dir=tmp / "server", startup_timeout=180) as srv:
        yield srv


_SEEN: set[str] = set()


def new_record(server: ServerProcess) -> dict[str, Any]:
    """The one record the last call added, read in full."""
    rows = server.wait_for_records(MODEL, len(_SEEN) + 1)
    [row] = [r for r in rows if r["id"] not in _SEEN]
    _SEEN.add(row["id"])
    return server.record(row["id"])


def assert_llama_usage(rec: dict[str, Any], stream: bool, call_type: str) -> dict[str, Any]:
    """The record's tokens are llama.cpp's (the chat usage it answered upstream); returns that usage."""
    assert rec["call_type"] == call_type and rec["status"] == "success" and rec["stream"] is stream
    assert rec["provider"] == "local" and rec["usage_estimated"] is False and rec["spend"] == 0
    usage = rec["upstream_response"]["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert (rec["prompt_tokens"], rec["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert rec["cached_tokens"] == usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
    sent = rec["upstream_request"]
    assert sent["tools"][0]["function"]["name"] == "get_weather" and sent["tool_choice"] == "required"
    return usage  # type: ignore[no-any-return]


def claude(server: ServerProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="none", max_retries=0, timeout=120)


def oai(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=120)


MESSAGES_TOOL = {"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER}
RESPONSES_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": WEATHER,
}


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_messages_tool_call_on_the_embedded_model(server: ServerProcess, stream: bool) -> None:
    args: dict[str, Any] = dict(
        model=MODEL,
        max_tokens=MAX_TOKENS,
        messages=[{"role": "user", "content": ASK}],
        tools=[MESSAGES_TOOL],
        tool_choice={"type": "any"},
        extra_body={"temperature": 0},  # a Messages field this SDK no longer types
    )
    if stream:
        with claude(server).messages.stream(**args) as s:
            msg = s.get_final_message()
    else:
        msg = claude(server).messages.create(**args)
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert uses and uses[0].name == "get_weather" and isinstance(uses[0].input, dict)
    assert msg.stop_reason == "tool_use"
    rec = new_record(server)
    usage = assert_llama_usage(rec, stream, "messages")
    # What the client was told is what llama.cpp counted (cache reads are part of its prompt).
    told_in = msg.usage.input_tokens + (msg.usage.cache_read_input_tokens or 0)
    assert (told_in, msg.usage.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert rec["response"]["content"][-1]["type"] == "tool_use"


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_responses_tool_call_on_the_embedded_model(server: ServerProcess, stream: bool) -> None:
    args: dict[str, Any] = dict(
        model=MODEL,
        input=ASK,
        tools=[RESPONSES_TOOL],
        tool_choice="required",
        max_output_tokens=MAX_TOKENS,
        temperature=0,
    )
    if stream:
        with oai(server).responses.stream(**args) as s:
            r = s.get_final_response()
    else:
        r = oai(server).responses.create(**args)
    calls = [o for o in r.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert isinstance(json.loads(calls[0].arguments), dict)
    rec = new_record(server)
    usage = assert_llama_usage(rec, stream, "responses")
    assert r.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert rec["response"]["id"] == r.id


@pytest.mark.parametrize("stream", [False, True], ids=["run", "run_streamed"])
def test_agents_sdk_one_tool_agent_on_the_embedded_model(server: ServerProcess, stream: bool, tmp_path: Path) -> None:
    """tests/agent_clis/weather_agent.py as the README runs it: the model calls the tool (forced
    on the first turn), the SDK runs it and sends the result back, the model answers."""
    session = f"embedded-weather-{stream}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "none",
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
        "MODELMETER_SESSION": session,
    }
    script = ROOT / "tests" / "agent_clis" / "weather_agent.py"
    cmd = [sys.executable, str(script), MODEL, ASK, "--force-tool", *(["--stream"] if stream else [])]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), done.stderr  # the model's final answer (its wording is its own)

    rows = server.wait_for_records(MODEL, 2, session=session)
    recs = [server.record(r["id"]) for r in reversed(rows)]
    _SEEN.update(r["id"] for r in recs)
    assert len(recs) == 2
    for rec in recs:
        assert rec["call_type"] == "responses" and rec["status"] == "success" and rec["stream"] is stream
        usage = rec["upstream_response"]["usage"]
        assert (rec["prompt_tokens"], rec["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    [call] = [o for o in recs[0]["response"]["output"] if o["type"] == "function_call"]
    assert call["name"] == "get_weather" and isinstance(json.loads(call["arguments"]), dict)
    [output] = [i for i in recs[1]["request"]["input"] if i.get("type") == "function_call_output"]
    assert output["call_id"] == call["call_id"] and output["output"].startswith("sunny in")
    answer = [o for o in recs[1]["response"]["output"] if o["type"] == "message"]
    assert answer and recs[1]["upstream_request"].get("tool_choice") != "required"
