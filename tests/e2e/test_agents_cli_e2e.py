"""The real agent clients through the gateway (issue 12 item 7): Claude Code (``claude -p``) on
/v1/messages, the Codex CLI (``codex exec``) and the OpenAI Agents SDK's default model on
/v1/responses, pass-through to fake upstreams of each shape reporting exact usage.

Each client runs as a person runs it (a subprocess, the README's settings, a virtual key, offline).
Every call it made reaches the fake upstream (its request log) and is recorded: call type, tokens
exactly as the fake reported, spend = Σ tokens × each component's rate, the virtual key's alias and
the session id the client sent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.agent_clis import clients
from tests.fakes import doors as fk
from tests.fakes import tool_calls
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ROOT, ServerProcess, run_cli, sqlite_url, write_config

RUN = uuid.uuid4().hex[:8]
# USD per million tokens, a distinct rate per component: a token priced at another's rate shows.
PRICE = {"input": 3, "cached_input": "0.3", "cache_write": "3.75", "cache_write_1h": 6, "output": 15, "reasoning": 17}
KEY_ENV = "AGENTS_FAKE_ANTHROPIC_KEY"
ANSWER = "tok0 tok1 tok2 tok3 tok4 tok5 tok6"  # the fakes' answer (7 tokens)
ALIAS = "agents"
# Tokens per component of one call, as the fakes report them (tests/fakes/doors.py).
MESSAGES_TOKENS = dict(
    input=fk.INPUT_TOKENS,
    cached_input=fk.CACHE_READ,
    cache_write=fk.CACHE_WRITE_5M,
    cache_write_1h=fk.CACHE_WRITE_1H,
    output=7,
)
CODEX_TOKENS = dict(input=fk.INPUT_TOKENS, cached_input=fk.CACHE_READ, output=7, reasoning=fk.REASONING)
SDK_TOKENS = dict(input=fk.INPUT_TOKENS, output=7)


@pytest.fixture(scope="module")
def gateway(
    fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, str]]:
    """A gateway that wants virtual keys, with deployments for each client in front of the fake
    upstream (``tool-call`` ones run a tool loop); (server, virtual key)."""
    clients.installed()
    tmp = tmp_path_factory.mktemp("agents")
    base = fake_upstream.base_url
    deployments: list[dict[str, Any]] = [
        {
            "name": "claude-agent",
            "model": f"claude-{RUN}-cached",
            "provider": "anthropic",
            "api_key_env": KEY_ENV,
        },
        {
            "name": "claude-tools",
            "model": f"claude-{RUN}-cached-{tool_calls.FLAG}",
            "provider": "anthropic",
            "api_key_env": KEY_ENV,
        },
        {"name": "codex-agent", "model": f"codex-{RUN}-cached-reasoning", "api": "responses"},
        {"name": "codex-tools", "model": f"codex-{RUN}-cached-reasoning-{tool_calls.FLAG}", "api": "responses"},
        {"name": "sdk-agent", "model": f"agent-{RUN}-{tool_calls.FLAG}", "api": "responses"},
    ]
    for dep in deployments:
        dep.update(price=PRICE, api_base=base)
    config = write_config(
        tmp / "modelmeter.toml", database=sqlite_url(tmp / "mm.db"), deployments=deployments, require_keys=True
    )
    with ServerProcess(config, log_dir=tmp / "server", env={KEY_ENV: f"sk-ant-fake-{RUN}"}) as srv:
        made = run_cli("keys", "create", ALIAS, "--url", srv.url)
        assert made.returncode == 0, made.stderr
        yield srv, made.stdout.strip()


def expected_spend(tokens: dict[str, int]) -> Decimal:
    return sum((Decimal(str(PRICE[c])) * n for c, n in tokens.items()), Decimal(0)) / 10**6


def assert_priced(rec: dict[str, Any], tokens: dict[str, int]) -> None:
    """Each component's tokens as the fake reported; spend == Σ tokens × rate == the breakdown's sum."""
    lines = {c["component"]: c for c in rec["cost_breakdown"]}
    assert {c: lines[c]["tokens"] for c in tokens if c in lines} == tokens, lines
    assert Decimal(str(rec["spend"])) == expected_spend(tokens) > 0
    assert sum(Decimal(str(c["cost"])) for c in rec["cost_breakdown"]) == Decimal(str(rec["spend"]))


def records_of(server: ServerProcess, deployment: str, n: int, **query: Any) -> list[dict[str, Any]]:
    """The deployment's newest ``n`` records (oldest first), whole, once all are written."""
    rows = server.wait_for_records(deployment, n, **query)
    return [server.record(r["id"]) for r in reversed(rows)]


def upstream_calls(fake: FakeUpstream, prefix: str) -> list[dict[str, Any]]:
    return [e for e in fake.request_log() if e["path"].startswith(prefix)]


@pytest.mark.parametrize("auth", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
def test_claude_code(
    auth: str, gateway: tuple[ServerProcess, str], fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    server, key = gateway
    fake_upstream.reset()
    session = str(uuid.uuid4())
    before = len(server.records("claude-agent"))
    creds = {"api_key": key} if auth == "ANTHROPIC_API_KEY" else {"auth_token": key}
    done = clients.run_claude(
        server.url, "Say hello.", model="claude-agent", home=tmp_path / "home", session_id=session, **creds
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ANSWER

    # What Claude Code sent, as the gateway passed it on: Messages calls naming its session.
    sent = upstream_calls(fake_upstream, "/v1/messages")
    assert sent and all(e["body"]["model"] == f"claude-{RUN}-cached" for e in sent)
    assert all(e["headers"]["x-api-key"] == f"sk-ant-fake-{RUN}" for e in sent)  # the upstream key, not ours
    assert all(e["query"] == "beta=true" for e in sent if e["path"] == "/v1/messages")  # passed on as sent
    assert all(session in e["body"]["metadata"]["user_id"] for e in sent if e["path"] == "/v1/messages")
    # Every call recorded (count_tokens too, should it call it), under the virtual key and the session.
    recs = records_of(server, "claude-agent", len(sent), session=session)
    assert len(server.records("claude-agent")) == before + len(sent)
    assert [r["call_type"] for r in recs] == [
        "count_tokens" if e["path"].endswith("/count_tokens") else "messages" for e in sent
    ]
    for rec in recs:
        assert rec["status"] == "success" and rec["key_alias"] == ALIAS and rec["session_id"] == session
        if rec["call_type"] == "count_tokens":
            assert Decimal(str(rec["spend"])) == 0
            continue
        assert rec["stream"] and rec["completion_tokens"] == 7
        assert rec["prompt_tokens"] == fk.INPUT_TOKENS + fk.CACHE_READ + fk.CACHE_WRITE_5M + fk.CACHE_WRITE_1H
        assert rec["cached_tokens"] == fk.CACHE_READ
        assert_priced(rec, MESSAGES_TOKENS)
    assert recs[-1]["response"]["content"] == [{"type": "text", "text": ANSWER}]


def test_claude_code_runs_a_tool(
    gateway: tuple[ServerProcess, str], fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Two calls of one session: the model asks for Read, Claude Code reads the file and sends the
    result back, the model answers with it."""
    server, key = gateway
    fake_upstream.reset()
    home = tmp_path / "home"  # Claude Code's working folder: it reads there without asking
    home.mkdir()
    note = home / "note.txt"
    note.write_text("hello from the file\n")
    done = clients.run_claude(
        server.url, f"Use Read with file_path={note}", model="claude-tools", home=home, auth_token=key
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(tool_calls.ANSWER_PREFIX) and "hello from the file" in done.stdout

    sent = upstream_calls(fake_upstream, "/v1/messages")
    assert [e["path"] for e in sent] == ["/v1/messages"] * 2
    # The session Claude Code names (its x-claude-code-session-id header is not sent upstream).
    session = json.loads(sent[0]["body"]["metadata"]["user_id"])["session_id"]
    assert json.loads(sent[1]["body"]["metadata"]["user_id"])["session_id"] == session
    recs = records_of(server, "claude-tools", 2, session=session)
    for rec in recs:
        assert rec["call_type"] == "messages" and rec["status"] == "success" and rec["key_alias"] == ALIAS
        assert rec["session_id"] == session and rec["completion_tokens"] == 7
        assert_priced(rec, MESSAGES_TOKENS)
    [use] = recs[0]["response"]["content"]
    assert use["type"] == "tool_use" and use["name"] == "Read" and use["input"] == {"file_path": str(note)}
    [result] = [b for b in recs[1]["request"]["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert result["tool_use_id"] == use["id"] and "hello from the file" in str(result["content"])


def test_codex_exec(gateway: tuple[ServerProcess, str], fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    server, key = gateway
    fake_upstream.reset()
    done = clients.run_codex(server.base_url, "Say hello.", model="codex-agent", home=tmp_path, api_key=key)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ANSWER
    found = re.search(r"^session id: (\S+)$", done.stderr, re.M)
    assert found, done.stderr
    session = found.group(1)

    sent = upstream_calls(fake_upstream, "/v1/")
    assert [e["path"] for e in sent] == ["/v1/responses"]
    assert sent[0]["body"]["stream"] is True and sent[0]["body"]["model"] == f"codex-{RUN}-cached-reasoning"
    assert sent[0]["body"]["prompt_cache_key"] == session
    [rec] = records_of(server, "codex-agent", 1, session=session)
    assert rec["call_type"] == "responses" and rec["status"] == "success" and rec["stream"]
    assert rec["key_alias"] == ALIAS and rec["session_id"] == session
    assert rec["prompt_tokens"] == fk.INPUT_TOKENS + fk.CACHE_READ and rec["cached_tokens"] == fk.CACHE_READ
    assert rec["completion_tokens"] == 7 + fk.REASONING and rec["reasoning_tokens"] == fk.REASONING
    assert_priced(rec, CODEX_TOKENS)


@pytest.mark.parametrize("stream", [False, True], ids=["run", "run_streamed"])
def test_agents_sdk_one_tool_agent(
    stream: bool, gateway: tuple[ServerProcess, str], fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    server, key = gateway
    fake_upstream.reset()
    before = len(server.records("sdk-agent"))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": key,
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
        "MODELMETER_SESSION": f"weather-{stream}",
    }
    script = ROOT / "tests" / "agent_clis" / "weather_agent.py"
    cmd = [sys.executable, str(script), "sdk-agent", "What is the weather in Paris?", *(["--stream"] if stream else [])]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{tool_calls.ANSWER_PREFIX}sunny in {tool_calls.ARGUMENT}"

    # Two calls: the model asks for the tool, then answers with its result.
    sent = upstream_calls(fake_upstream, "/v1/")
    assert [e["path"] for e in sent] == ["/v1/responses"] * 2
    recs = records_of(server, "sdk-agent", 2, session=f"weather-{stream}")
    assert len(server.records("sdk-agent")) == before + 2
    for rec in recs:
        assert rec["call_type"] == "responses" and rec["status"] == "success" and rec["stream"] == stream
        assert rec["session_id"] == f"weather-{stream}"
        assert rec["key_alias"] == ALIAS and rec["prompt_tokens"] == fk.INPUT_TOKENS and rec["completion_tokens"] == 7
        assert_priced(rec, SDK_TOKENS)
    assert recs[0]["response"]["output"][0]["type"] == "function_call"
    outputs = [i for i in recs[1]["request"]["input"] if i.get("type") == "function_call_output"]
    assert outputs == [{"call_id": outputs[0]["call_id"], "output": "sunny in Paris", "type": "function_call_output"}]


def test_codex_runs_a_command(gateway: tuple[ServerProcess, str], fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    """Two calls of one session: the model asks for exec_command, Codex runs it (in its read-only
    sandbox) and sends the output back, the model answers with it."""
    server, key = gateway
    fake_upstream.reset()
    done = clients.run_codex(
        server.base_url, "Use exec_command with cmd=pwd", model="codex-tools", home=tmp_path, api_key=key
    )
    assert done.returncode == 0, done.stderr
    workdir = str(tmp_path / "work")
    assert done.stdout.startswith(tool_calls.ANSWER_PREFIX) and workdir in done.stdout
    found = re.search(r"^session id: (\S+)$", done.stderr, re.M)
    assert found, done.stderr

    sent = upstream_calls(fake_upstream, "/v1/")
    assert [e["path"] for e in sent] == ["/v1/responses"] * 2
    recs = records_of(server, "codex-tools", 2, session=found.group(1))
    for rec in recs:
        assert rec["call_type"] == "responses" and rec["status"] == "success" and rec["key_alias"] == ALIAS
        assert rec["session_id"] == found.group(1) and rec["reasoning_tokens"] == fk.REASONING
        assert_priced(rec, CODEX_TOKENS)
    [call] = recs[0]["response"]["output"]
    assert call["type"] == "function_call" and call["name"] == "exec_command"
    assert json.loads(call["arguments"]) == {"cmd": "pwd"}
    [output] = [i for i in recs[1]["request"]["input"] if i.get("type") == "function_call_output"]
    assert output["call_id"] == call["call_id"] and workdir in output["output"]
