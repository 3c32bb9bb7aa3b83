"""Budgets per end user (issue 16 item 5): a spend limit on the requests' ``user`` field, set through
/api/user-budgets; once the user's recorded spend reaches it, calls naming that user get a 429 with
Retry-After in the OpenAI shape (recorded, never sent upstream); other users are not limited, and
the budget's spend equals the sum of the user's records."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, sqlite_url, wait_for, write_config

RUN = uuid.uuid4().hex[:8]
PRICE = {"input": 1000, "output": 1000}  # USD per million tokens: 11 tokens = $0.011
MSG = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("user-budgets")
    deployments = [{"name": "chat", "model": "fake-model", "api_base": fake_upstream.base_url, "price": PRICE}]
    config = write_config(tmp / "modelmeter.toml", database=sqlite_url(tmp / "mm.db"), deployments=deployments)
    with ServerProcess(config, log_dir=tmp / "server") as srv:
        yield srv


def test_user_over_budget_gets_429_with_retry_after(server: ServerProcess, fake_upstream: FakeUpstream) -> None:
    alice, bob = f"alice-{RUN}", f"bob-{RUN}"
    status, body = server.api("PUT", "/api/user-budgets", {"user": alice, "budget_usd": 0.02})
    assert status == 200 and body["budget_usd"] == 0.02 and body["spent_usd"] == 0
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=20)
    for n in (1, 2):  # each call is recorded (and its spend counted) before the next
        client.chat.completions.create(model="chat", messages=MSG, user=alice, max_tokens=7)
        server.wait_for_records("chat", n, status="success")
        wait_for(lambda n=n: server.api("GET", "/api/user-budgets")[1]["data"][0]["spent_usd"] >= 0.011 * n, 10)
    upstream_calls = fake_upstream.stats()["requests"]["/v1/chat/completions"]
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="chat", messages=MSG, user=alice, max_tokens=7)
    err = info.value
    assert err.code == "budget_exceeded" and alice in err.message and "$0.02" in err.message
    assert err.response.headers["retry-after"] == "3600"
    assert fake_upstream.stats()["requests"]["/v1/chat/completions"] == upstream_calls  # not sent upstream
    # another user, and no user, are not limited
    client.chat.completions.create(model="chat", messages=MSG, user=bob, max_tokens=7)
    client.chat.completions.create(model="chat", messages=MSG, max_tokens=7)
    refused = server.wait_for_records("chat", 1, status="error")[0]
    assert refused["http_status"] == 429 and refused["request_id"] == err.response.headers["x-request-id"]
    records = [server.record(r["id"]) for r in server.wait_for_records("chat", 5)]
    alices = [r for r in records if (r["metadata"] or {}).get("user") == alice]
    assert len(alices) == 3
    spent = sum(Decimal(str(r["spend"])) for r in alices)
    tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in alices if r["status"] == "success")
    assert spent == Decimal(tokens) * 1000 / 10**6 >= Decimal("0.02")  # the refused call costs nothing
    budget = next(b for b in server.api("GET", "/api/user-budgets")[1]["data"] if b["user"] == alice)
    assert Decimal(str(budget["spent_usd"])) == spent
    # raising the budget lets the user in again; removing it lifts the limit
    assert server.api("PUT", "/api/user-budgets", {"user": alice, "budget_usd": 1})[0] == 200
    client.chat.completions.create(model="chat", messages=MSG, user=alice, max_tokens=7)
    assert server.api("DELETE", f"/api/user-budgets/{alice}")[0] == 204
    assert server.api("DELETE", f"/api/user-budgets/{alice}")[0] == 404


def test_bad_budget_is_refused(server: ServerProcess) -> None:
    status, body = server.api("PUT", "/api/user-budgets", {"user": "x", "budget_usd": -1})
    assert status in (400, 422) and "error" in body
    status, body = server.api("PUT", "/api/user-budgets", {"user": "", "budget_usd": 1})
    assert status in (400, 422) and "error" in body
