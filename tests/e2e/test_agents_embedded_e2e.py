"""The real agent CLIs against the embedded model (SmolLM2-135M on llama.cpp, 4096-token context)
through the gateway's translation, as the README's "Agents through modelmeter" section runs them.

What fits is measured here, not assumed: Claude Code's default request (system prompt and ~20 tool
definitions, ~12k tokens) and Codex's (~6.5k tokens) do not fit the context, and each gets the
upstream's clear error, recorded; ``claude -p --tools "" --system-prompt ...`` (~300 tokens) fits
and answers. Every call is recorded with llama.cpp's own token counts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_clis import clients
from tests.helpers import ServerProcess, sqlite_url, write_config

MODEL = "smollm2-135m-instruct"
TOO_LONG = re.compile(r"request \((\d+) tokens\) exceeds the available context size \(4096 tokens\)")
# Claude Code fails the run when a turn reaches max_tokens ("response exceeded the N output token
# maximum"), and a 135M model sampled at Claude Code's temperature rambled past 512 once in CI: leave
# it room (the ~300-token prompt plus this still fit the 4,096-token context).
MAX_OUT = 3000
SHORT = {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(MAX_OUT)}

# What fits: no tools and a short system prompt (~300 tokens; --tools "" alone is ~1.8k).
NO_TOOLS = ("--tools", "", "--system-prompt", "Answer in one short sentence.")

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    clients.installed()
    tmp = tmp_path_factory.mktemp("embedded-agents")
    config = write_config(
        tmp / "modelmeter.toml",
        database=sqlite_url(tmp / "mm.db"),
        deployments=[{"name": MODEL, "provider": "local"}],
        local_threads=1,
    )
    with ServerProcess(config, log_dir=tmp / "server", startup_timeout=180) as srv:
        yield srv


def session_records(server: ServerProcess, session: str, n: int) -> list[dict[str, Any]]:
    rows = server.wait_for_records(MODEL, n, session=session)
    return [server.record(r["id"]) for r in reversed(rows)]


def test_claude_code_default_prompt_does_not_fit(server: ServerProcess, tmp_path: Path) -> None:
    session = "0b7f43c2-5a7e-4c36-9d5e-000000000001"
    done = clients.run_claude(
        server.url, "say hi", model=MODEL, home=tmp_path, api_key="none", session_id=session, env_extra=SHORT
    )
    found = TOO_LONG.search(done.stdout + done.stderr)
    assert found and int(found.group(1)) > 4096, (done.stdout, done.stderr)
    [rec] = session_records(server, session, 1)
    assert rec["call_type"] == "messages" and rec["status"] == "error" and rec["http_status"] == 400
    assert TOO_LONG.search(rec["error"]) and rec["prompt_tokens"] == 0 and rec["completion_tokens"] == 0


@pytest.mark.timeout(900)  # the ramble path: ~270 s on a quiet machine, over 300 s on a slow one
def test_claude_code_without_tools_answers(server: ServerProcess, tmp_path: Path) -> None:
    session = "0b7f43c2-5a7e-4c36-9d5e-000000000002"
    done = clients.run_claude(
        server.url,
        "say hi",
        model=MODEL,
        home=tmp_path,
        auth_token="none",
        session_id=session,
        args=NO_TOOLS,
        env_extra=SHORT,
        timeout=600,  # a ramble and Claude Code's resume and retries: ~270 s on a quiet machine
    )
    session_records(server, session, 1)
    time.sleep(1)  # the last calls' records (the recorder writes in batches)
    recs = [server.record(r["id"]) for r in reversed(server.records(MODEL, session=session))]
    answers = [r for r in recs if r["status"] == "success"]
    assert answers, recs
    for rec in answers:  # every answer streamed, usage as the upstream reported it
        assert rec["call_type"] == "messages" and rec["stream"]
        usage = rec["upstream_response"]["usage"]
        assert (rec["prompt_tokens"], rec["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
        assert 0 < rec["prompt_tokens"] < 4096 and 0 < rec["completion_tokens"] <= MAX_OUT
        assert rec["upstream_request"]["max_tokens"] == MAX_OUT and "tools" not in rec["upstream_request"]
        assert "Answer in one short sentence." in rec["upstream_request"]["messages"][0]["content"]
    if done.returncode == 0:
        assert done.stdout.strip() and all(r["status"] == "success" for r in recs)
        assert recs[-1]["response"]["content"][0]["text"].strip() == done.stdout.strip()
        return
    # The 135M model, sampled at Claude Code's temperature, sometimes rambles to MAX_OUT (two of three
    # CI runs one day); Claude Code then resumes and compacts until the 4,096-token context is full.
    # That is the model, not the gateway: the ramble is recorded, and every call that no longer fit
    # is a recorded 400 with the model's context error, in the order Claude Code made them.
    assert answers[0]["completion_tokens"] == MAX_OUT, (done.stdout, done.stderr, recs)
    refused = [r for r in recs if r["status"] != "success"]
    assert refused, (done.stdout, done.stderr, recs)
    for rec in refused:
        assert rec["call_type"] == "messages" and rec["http_status"] == 400 and TOO_LONG.search(rec["error"]), rec
        assert rec["prompt_tokens"] == 0 and rec["completion_tokens"] == 0


def test_codex_default_prompt_does_not_fit(server: ServerProcess, tmp_path: Path) -> None:
    done = clients.run_codex(server.base_url, "say hi", model=MODEL, home=tmp_path, api_key="none")
    found = TOO_LONG.search(done.stdout + done.stderr)
    assert done.returncode != 0 and found and int(found.group(1)) > 4096, (done.stdout, done.stderr)
    session = re.search(r"^session id: (\S+)$", done.stderr, re.M)
    assert session, done.stderr
    recs = session_records(server, session.group(1), 1)
    for rec in recs:  # Codex may retry: each try recorded
        assert rec["call_type"] == "responses" and rec["status"] == "error" and rec["http_status"] == 400
        assert TOO_LONG.search(rec["error"])
