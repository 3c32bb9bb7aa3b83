"""Issue #18 item 5: a key's tokens-per-minute and budget hold under concurrency. 50 calls at once
against a slow upstream: each admitted call holds an estimate until its record is stored, so the
calls let in use at most the limit plus one call's worth."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess

PARALLEL = 50
CHAT = {"model": "slow", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 5}


@pytest.fixture
def keyed(make_config: Any, start_server: Any, fake_upstream: FakeUpstream) -> ServerProcess:
    # Dear prices, so a call's spend is far above rounding: 10 tokens cost $0.015 per call.
    config = make_config(
        require_keys=True,
        deployments=[
            {
                "name": "slow",
                "model": "fake-model",
                "api_base": fake_upstream.base_url,
                "price": {"input": 1000, "output": 2000},
            }
        ],
    )
    server: ServerProcess = start_server(config)
    return server


def _burst(server: ServerProcess, key: str) -> dict[str, int]:
    """PARALLEL calls at once; each waits 1 s for its answer (all are in flight together)."""
    client = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=30)

    def one(_: int) -> str:
        try:
            client.chat.completions.create(**CHAT, extra_headers={"x-fake-ttft-ms": "1000"})
            return "ok"
        except openai.RateLimitError:
            return "429"

    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        outcomes = list(pool.map(one, range(PARALLEL)))
    return {o: outcomes.count(o) for o in set(outcomes)}


def test_concurrent_calls_cannot_jointly_pass_the_token_limit(keyed: ServerProcess) -> None:
    tpm = 40
    status, created = keyed.api("POST", "/api/keys", {"alias": "tpm", "tpm": tpm})
    assert status == 201, created
    outcomes = _burst(keyed, created["key"])
    rows = keyed.wait_for_records("slow", PARALLEL, key_alias="tpm")  # every call recorded, 429s too
    ok = [r for r in rows if r["http_status"] == 200]
    assert len(ok) == outcomes.get("ok", 0) >= 1 and outcomes.get("429", 0) >= 1, outcomes
    used = sum(r["total_tokens"] for r in ok)
    one_call = max(r["total_tokens"] for r in ok)
    print(f"tpm {tpm}: {len(ok)} of {PARALLEL} admitted, {used} tokens used ({used / tpm:.2f}x the limit)")
    assert used <= tpm + one_call, (used, outcomes)
    limited = [r for r in rows if r["http_status"] == 429]
    assert all("tokens per minute" in (r["error"] or "") for r in limited)


def test_concurrent_calls_cannot_jointly_pass_the_budget(keyed: ServerProcess) -> None:
    budget = 0.05
    status, created = keyed.api("POST", "/api/keys", {"alias": "budget", "budget_usd": budget})
    assert status == 201, created
    outcomes = _burst(keyed, created["key"])
    rows = keyed.wait_for_records("slow", PARALLEL, key_alias="budget")
    ok = [r for r in rows if r["http_status"] == 200]
    assert len(ok) == outcomes.get("ok", 0) >= 1 and outcomes.get("429", 0) >= 1, outcomes
    spent = sum(r["spend"] for r in ok)
    one_call = max(r["spend"] for r in ok)
    print(f"budget ${budget}: {len(ok)} of {PARALLEL} admitted, ${spent:.4f} spent ({spent / budget:.2f}x)")
    assert spent <= budget + one_call + 1e-9, (spent, outcomes)
    # Once the records are stored, the key's spend says the same, and the next call is refused
    # for good if the budget is used up.
    status, listed = keyed.api("GET", "/api/keys")
    assert abs(listed["data"][0]["spent_usd"] - spent) < 1e-9
