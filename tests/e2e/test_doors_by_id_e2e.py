"""The Responses API's calls on a stored response (retrieve, delete, input_items, cancel) through the
official openai SDK, against a running gateway that requires virtual keys and a fake Responses
upstream: each is recorded once, as its own call type, with the key's alias, free (the usage is the
creating call's), and the summary's tokens and spend are the creating call's alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest

from tests.fakes import doors as fk
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, sqlite_url, write_config

RUN = uuid.uuid4().hex[:8]
PRICE = {"input": 3, "cached_input": "0.3", "output": 15, "reasoning": 17}
BY_ID = ("responses_get", "responses_delete", "responses_input_items", "responses_cancel")


@pytest.fixture(scope="module")
def server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("byid")
    base = fake_upstream.base_url
    dep = {"name": "resp", "model": f"resp-{RUN}-cached-reasoning", "api": "responses", "api_base": base}
    config = write_config(
        tmp / "modelmeter.toml",
        database=sqlite_url(tmp / "mm.db"),
        require_keys=True,
        deployments=[{**dep, "price": PRICE}],
    )
    with ServerProcess(config, log_dir=tmp / "server") as srv:
        yield srv


def totals(server: ServerProcess) -> tuple[int, Decimal]:
    status, summary = server.api("GET", "/api/deployments/resp/usage?window=1h")
    assert status == 200, summary
    return summary["total_tokens"], Decimal(str(summary["spend"]))


def by_type(server: ServerProcess, call_type: str, n: int) -> list[dict[str, Any]]:
    rows = server.wait_for_records("resp", n, call_type=call_type)
    assert len(server.records("resp", call_type=call_type)) == n, call_type  # no more than n
    return [server.record(r["id"]) for r in rows]


def test_by_id_calls_recorded_free(server: ServerProcess) -> None:
    status, created = server.api("POST", "/api/keys", {"alias": "agent"})
    assert status == 201, created
    client = openai.OpenAI(base_url=server.base_url, api_key=created["key"], max_retries=0, timeout=20)
    made = client.responses.create(model="resp", input="Say hello.", max_output_tokens=7)
    creating = server.wait_for_records("resp", 1, call_type="responses")[0]
    before = totals(server)
    assert before[0] == creating["total_tokens"] == fk.INPUT_TOKENS + fk.CACHE_READ + 7 + fk.REASONING
    assert before[1] == Decimal(str(creating["spend"])) > 0

    raw = client.responses.with_raw_response.retrieve(made.id)
    assert raw.parse().id == made.id
    items = client.responses.input_items.list(made.id)
    assert items.data[0].content[0].text == "Say hello."  # type: ignore[union-attr]
    assert client.responses.cancel(made.id).id == made.id
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)  # gone upstream: its 404, recorded
    bad = openai.OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0, timeout=20)
    with pytest.raises(openai.AuthenticationError):
        bad.responses.retrieve(made.id)  # refused by the gateway, recorded

    gets = by_type(server, "responses_get", 3)
    ok = next(r for r in gets if r["request_id"] == raw.headers["x-request-id"])
    assert ok["http_status"] == 200 and ok["status"] == "success" and ok["response"]["id"] == made.id
    missing = next(r for r in gets if r["http_status"] == 404)
    assert missing["status"] == "error" and "not found" in missing["error"] and missing["key_alias"] == "agent"
    refused = next(r for r in gets if r["http_status"] == 401)
    assert refused["key_alias"] is None and refused["response"]["error"]["code"] == "invalid_api_key"
    assert ok["key_alias"] == "agent"
    others = [r for t in BY_ID[1:] for r in by_type(server, t, 1)]
    assert [r["http_status"] for r in others] == [200, 200, 200]
    assert others[0]["response"]["deleted"] is True and others[1]["response"]["data"][0]["id"] == "in_1"
    for rec in [*gets, *others]:
        assert rec["key_alias"] in ("agent", None) and rec["deployment"] == "resp"
        assert rec["prompt_tokens"] == rec["completion_tokens"] == rec["total_tokens"] == 0
        assert Decimal(str(rec["spend"])) == 0 and not rec["usage_estimated"]
        assert rec["latency_ms"] > 0 and rec["request_id"]
        assert (rec["metadata"] or {}).get("response_id") == made.id
    assert len(server.records("resp")) == 1 + 3 + 3  # nothing else recorded
    assert totals(server) == before


def test_by_id_answers_scrubbed_of_the_callers_key(server: ServerProcess) -> None:
    """An upstream that echoes the caller's key (here: its input, back in input_items) never shows
    it to the client nor in the record, as on every other call."""
    status, created = server.api("POST", "/api/keys", {"alias": "echo"})
    assert status == 201, created
    key = created["key"]
    client = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=20)
    made = client.responses.create(model="resp", input=f"my key is {key}", max_output_tokens=2)
    items = client.responses.input_items.list(made.id)
    text = items.data[0].content[0].text  # type: ignore[union-attr]
    assert key not in text and text.startswith("my key is [redacted]")
    rows = server.wait_for_records("resp", 1, call_type="responses_input_items", key_alias="echo")
    assert key not in str(server.record(rows[0]["id"])["response"])
