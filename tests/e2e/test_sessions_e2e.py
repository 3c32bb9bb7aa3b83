"""Sessions through a real server (#12.5): each source of a call's session_id, what wins when
several are sent, the cleaning and the cap, and the log's session and call-type filters over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest

from modelmeter.gateway.sessions import MAX_SESSION_CHARS
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess

MSGS = [{"role": "user", "content": "Say hello."}]
CLAUDE_NEW = "6f1c2d3e-0000-4000-8000-00000000c1a0"
CLAUDE_OLD = "7a2b3c4d-0000-4000-8000-00000000c1a1"
CODEX = "0199a1b2-c3d4-7e5f-8a9b-00000000c0de"


@pytest.fixture
def server(fake_upstream: FakeUpstream, make_config: Any, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(make_config([{"name": "chat", "model": "fake-model", "api_base": fake_upstream.base_url}]))


def _call(server: ServerProcess, headers: dict[str, str] | None = None, **body: Any) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    client.chat.completions.create(
        model="chat",
        messages=MSGS,
        extra_headers=headers or {},
        extra_body=body or None,  # type: ignore[arg-type]
    )


def _session_of(server: ServerProcess, n: int) -> list[str | None]:
    rows = server.wait_for_records("chat", n)
    return [r["session_id"] for r in reversed(rows)]  # oldest first: the order the calls were made


def test_each_source_names_the_session(server: ServerProcess) -> None:
    _call(server, {"x-modelmeter-session": "my-run-1"})
    # Claude Code since v2.1.78: a JSON string in metadata.user_id
    claude_new = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": CLAUDE_NEW})
    _call(server, metadata={"user_id": claude_new})
    # Claude Code before: user_<hash>_account_<uuid>_session_<uuid>
    _call(server, metadata={"user_id": f"user_{'a' * 64}_account__session_{CLAUDE_OLD}"})
    _call(server, {"session_id": CODEX, "conversation_id": CODEX})  # Codex CLI's headers
    _call(server, {"conversation_id": "conv-only"})
    _call(server, prompt_cache_key="codex-cache-key")  # Codex's body field
    _call(server)  # nothing names a session
    _call(server, metadata={"user_id": "plain-user"})  # a user id with no session in it
    assert _session_of(server, 8) == [
        "my-run-1",
        CLAUDE_NEW,
        CLAUDE_OLD,
        CODEX,
        "conv-only",
        "codex-cache-key",
        None,
        None,
    ]


def test_the_agent_clis_session_headers(server: ServerProcess) -> None:
    """The headers Claude Code 2.1.332 and Codex 0.171.0 send (seen in tests/e2e/test_agents_cli_e2e.py)."""
    claude = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": CLAUDE_NEW})
    _call(server, {"x-claude-code-session-id": CLAUDE_NEW}, metadata={"user_id": claude})
    _call(server, {"x-claude-code-session-id": CLAUDE_OLD})  # e.g. count_tokens: no metadata
    _call(server, {"session-id": CODEX, "thread-id": CODEX}, prompt_cache_key="other-key")
    _call(server, {"x-modelmeter-session": "mine", "x-claude-code-session-id": CLAUDE_NEW})
    assert _session_of(server, 4) == [CLAUDE_NEW, CLAUDE_OLD, CODEX, "mine"]


def test_the_header_wins_and_values_are_cleaned_and_capped(server: ServerProcess) -> None:
    claude = json.dumps({"session_id": CLAUDE_NEW})
    _call(server, {"x-modelmeter-session": "chosen"}, metadata={"user_id": claude}, prompt_cache_key="k")
    _call(server, {"session_id": "codex-header"}, prompt_cache_key="k")
    _call(server, metadata={"user_id": json.dumps({"session_id": "a\u200bb\u0007c\u202e d  "})})
    _call(server, {"x-modelmeter-session": "x" * 1000})
    _call(server, metadata={"user_id": json.dumps({"session_id": " \u200b "})}, prompt_cache_key="fallback")
    got = _session_of(server, 5)
    assert got[:3] == ["chosen", "codex-header", "abc d"]
    assert got[3] == "x" * MAX_SESSION_CHARS
    assert got[4] == "fallback"  # a blank session id names nothing


def test_the_log_filters_by_session_and_call_type(server: ServerProcess) -> None:
    for i in range(5):
        _call(server, {"x-modelmeter-session": "alpha" if i % 2 == 0 else "beta"})
    server.wait_for_records("chat", 5)
    alpha = server.records("chat", session="alpha")
    assert len(alpha) == 3 and {r["session_id"] for r in alpha} == {"alpha"}
    assert len(server.records("chat", session="beta", call_type="chat")) == 2
    assert server.records("chat", session="beta", call_type="messages") == []
    assert server.records("chat", session="nobody") == []
    status, body = server.api("GET", "/api/deployments/chat/requests?session=" + "s" * 600)
    assert status == 400 and "error" in body  # the API error shape, not a 500
    status, _ = server.api("GET", "/api/deployments/chat/requests/export?format=jsonl&session=alpha")
    assert status == 200
