"""Several upstreams behind one model (issue 15), end to end: three fake upstreams (one failing, one
slow, one healthy) started here, the real server, the openai SDK. The split, fallbacks, cooldowns
and their probe, 402s, no fallback mid-stream, and every attempt in the ledger."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import (
    ServerProcess,
    closed_port_url,
    read_sqlite_records,
    run_cli,
    sqlite_url,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.timeout(180)
PRICE_A = {"input": 1, "output": 2}
PRICE_B = {"input": 10, "output": 20}
MESSAGES = [{"role": "user", "content": "three words here"}]


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeUpstream, FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as healthy, FakeUpstream(env={"FAKE_TTFT_MS": "30"}) as slow, FakeUpstream() as failing:
        yield healthy, slow, failing


def serve(tmp_path: Path, deployment: dict[str, Any], **server: Any) -> ServerProcess:
    cfg = write_config(
        tmp_path / "mm.toml", database=sqlite_url(tmp_path / "mm.db"), deployments=[deployment], **server
    )
    return ServerProcess(cfg)


def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)


def health(server: ServerProcess, name: str = "m") -> dict[str, dict[str, Any]]:
    status, body = server.api("GET", "/api/upstreams")
    assert status == 200, body
    (dep,) = [d for d in body["data"] if d["deployment"] == name]
    return {u["name"]: u for u in dep["upstreams"]}


def alert(server: ServerProcess, name: str = "cooling") -> dict[str, Any]:
    status, body = server.api("GET", "/api/alerts")
    assert status == 200, body
    return dict(next(r for r in body["data"] if r["name"] == name))


def cost(usage: Any, price: dict[str, int]) -> float:
    return float(
        (Decimal(usage["prompt_tokens"]) * price["input"] + Decimal(usage["completion_tokens"]) * price["output"])
        / 1_000_000
    )


def check_ledger(server: ServerProcess, rows: list[dict[str, Any]], prices: dict[str, dict[str, int]]) -> None:
    """Every record lists its attempts; the served one is priced at its upstream's rates; the
    attempts' costs add up to the record's."""
    for row in rows:
        full = server.record(row["id"])
        attempts = full["attempts"]
        assert attempts and attempts[-1]["upstream"] == full["served_by"] and attempts[-1]["served"]
        assert all(not a["served"] and a["error"] for a in attempts[:-1])
        assert sum(a["cost"] for a in attempts) == pytest.approx(full["spend"], rel=1e-9, abs=1e-12)
        assert full["spend"] == pytest.approx(cost(full, prices[full["served_by"]]), rel=1e-9)
        assert full["retries"] == len(attempts) - 1


def test_weighted_split_and_fallback_past_a_dead_upstream(tmp_path: Path, fakes: Any) -> None:
    healthy, slow, _ = fakes
    dep = {
        "name": "m",
        "model": "fake-model",
        "upstreams": [
            {"name": "dead", "api_base": closed_port_url()},  # tried first until cooled down
            {"name": "a", "api_base": healthy.base_url, "weight": 3, "price": PRICE_A, "priority": 1},
            {"name": "b", "api_base": slow.base_url, "weight": 1, "price": PRICE_B, "priority": 1},
        ],
        "max_retries": 1,
        "cooldown_after": 3,
    }
    n = 300
    with serve(tmp_path, dep) as server:
        oa = client(server)
        for _ in range(n):
            answer = oa.chat.completions.create(model="m", messages=MESSAGES)
            assert answer.choices[0].message.content == "tok0 tok1 tok2 tok3 tok4 tok5 tok6"
        rows = wait_for(lambda: len(r := read_sqlite_records(tmp_path / "mm.db")) == n and r, 20)
        split = Counter(r["served_by"] for r in rows)
        assert set(split) == {"a", "b"}, split
        assert 0.65 <= split["a"] / n <= 0.85, split  # 3:1 (loose: a few hundred calls)
        check_ledger(server, rows[:40], {"a": PRICE_A, "b": PRICE_B})
        tried = [orjson.loads(r["attempts"]) for r in rows]
        assert [len(t) for t in tried[:4]] == [2, 2, 2, 1] and all(len(t) == 1 for t in tried[3:])
        assert all(t[0]["upstream"] == "dead" and t[0]["status"] is None and t[0]["error"] for t in tried[:3])
        assert health(server)["dead"]["state"] == "cooling"
        assert {r["api_base"] for r in rows} == {healthy.base_url, slow.base_url}


def test_failing_upstream_cooled_after_n_then_probed_after_t(tmp_path: Path, fakes: Any) -> None:
    healthy, _, failing = fakes
    failing.reset()
    dep = {
        "name": "m",
        "model": "fake-model",
        "upstreams": [
            {"name": "bad", "api_base": failing.base_url, "model": "fail-500", "price": PRICE_A},
            {"name": "good", "api_base": healthy.base_url, "priority": 1, "price": PRICE_B},
        ],
        "cooldown_after": 2,
        "cooldown": "1.5s",
    }
    with serve(tmp_path, dep) as server:
        oa = client(server)
        for _ in range(6):
            oa.chat.completions.create(model="m", messages=MESSAGES)
        assert failing.stats()["models"].get("fail-500") == 2  # cooled after 2 failures: not called again
        h = health(server)
        assert (
            h["bad"]["state"] == "cooling" and h["bad"]["last_error"] == "HTTP 500" and h["good"]["state"] == "healthy"
        )
        time.sleep(1.6)
        assert health(server)["bad"]["state"] == "probing"
        oa.chat.completions.create(model="m", messages=MESSAGES)  # the probe: fails, falls back
        assert failing.stats()["models"].get("fail-500") == 3
        assert health(server)["bad"]["state"] == "cooling"
        rows = server.wait_for_records("m", 7)
        assert [len(r["attempts"]) for r in reversed(rows)] == [2, 2, 1, 1, 1, 1, 2]
        assert all(r["served_by"] == "good" and r["status"] == "success" for r in rows)
        check_ledger(server, rows, {"good": PRICE_B})
        req = urllib.request.Request(
            server.url + "/metrics", headers={"authorization": "Bearer test-admin-key-0123456789"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            status, text = r.status, r.read().decode()
        assert status == 200
        assert 'modelmeter_upstream_state{deployment="m",state="cooling",upstream="bad"} 1.0' in text
        assert 'modelmeter_upstream_in_flight{deployment="m",upstream="good"} 0.0' in text


def test_402_takes_an_upstream_out_until_reset(tmp_path: Path, fakes: Any) -> None:
    healthy, _, failing = fakes
    failing.reset()
    dep = {
        "name": "m",
        "model": "fake-model",
        "upstreams": [
            {"name": "broke", "api_base": failing.base_url, "model": "fail-402"},
            {"name": "backup", "api_base": healthy.base_url, "priority": 1},
        ],
    }
    with serve(tmp_path, dep, alert_interval=0.2) as server:
        rule = {"name": "cooling", "kind": "upstream_cooling", "deployment": "m"}
        status, body = server.api("POST", "/api/alerts", rule)
        assert status == 201, body
        oa = client(server)
        for _ in range(3):
            oa.chat.completions.create(model="m", messages=MESSAGES)
        assert failing.stats()["models"].get("fail-402") == 1
        wait_for(lambda: alert(server)["state"] == "firing", 10)
        assert alert(server)["value"] == 1 and alert(server)["unit"] == "upstreams"
        h = health(server)["broke"]
        assert h["state"] == "out" and h["last_error"] == "HTTP 402"
        status, listed = server.api("GET", "/api/deployments")
        card = next(d for d in listed["data"] if d["name"] == "m")
        assert {u["name"]: u["state"] for u in card["upstream_health"]} == {"broke": "out", "backup": "healthy"}
        status, body = server.api("POST", "/api/upstreams/reset", {"deployment": "m", "upstream": "nope"})
        assert status == 404 and "no upstream named 'nope'" in body["error"]["message"]
        status, body = server.api("POST", "/api/upstreams/reset", {"deployment": "m", "upstream": "broke"})
        assert status == 200 and body["upstream"]["state"] == "healthy"
        wait_for(lambda: alert(server)["state"] == "ok", 10)
        oa.chat.completions.create(model="m", messages=MESSAGES)
        assert failing.stats()["models"].get("fail-402") == 2
        rows = server.wait_for_records("m", 4)
        assert [len(r["attempts"]) for r in reversed(rows)] == [2, 1, 1, 2]
        assert rows[-1]["attempts"][0] | {"latency_ms": 0} == {
            "upstream": "broke",
            "status": 402,
            "error": "HTTP 402",
            "latency_ms": 0,
            "served": False,
            "tokens": None,
            "cost": 0.0,
        }


def test_no_fallback_once_a_stream_has_started(tmp_path: Path, fakes: Any) -> None:
    healthy, _, failing = fakes
    failing.reset()
    healthy.reset()
    dep = {
        "name": "m",
        "model": "fake-model",
        "upstreams": [
            {"name": "cuts", "api_base": failing.base_url, "model": "cut-stream"},
            {"name": "backup", "api_base": healthy.base_url, "priority": 1},
        ],
    }
    with serve(tmp_path, dep) as server:
        oa = client(server)
        got = []
        with pytest.raises(openai.APIError):
            for chunk in oa.chat.completions.create(model="m", messages=MESSAGES, stream=True):
                got.extend(c.delta.content or "" for c in chunk.choices)
        assert got  # the client had the first bytes: too late to go elsewhere
        assert healthy.stats()["models"].get("fake-model", 0) == 0
        (row,) = server.wait_for_records("m", 1)
        assert row["served_by"] == "cuts" and len(row["attempts"]) == 1 and row["status"] == "error"


def test_all_upstreams_out_is_a_clear_503_and_recorded(tmp_path: Path, fakes: Any) -> None:
    _, _, failing = fakes
    dep = {"name": "m", "model": "fail-402", "upstreams": [{"name": "only", "api_base": failing.base_url}]}
    with serve(tmp_path, dep) as server:
        oa = client(server)
        with pytest.raises(openai.APIStatusError) as first:
            oa.chat.completions.create(model="m", messages=MESSAGES)
        assert first.value.status_code == 402  # the only upstream's answer, passed through
        with pytest.raises(openai.APIStatusError) as second:
            oa.chat.completions.create(model="m", messages=MESSAGES)
        assert second.value.status_code == 503
        assert second.value.body["code"] == "no_upstream_available"  # type: ignore[index]
        rows = wait_for(lambda: (r := server.records("m")) and len(r) == 2 and r, 10)
        assert rows[0]["served_by"] is None and rows[0]["attempts"] is None and rows[0]["http_status"] == 503


def test_run_time_deployment_falls_back_to_another_api(tmp_path: Path, fakes: Any) -> None:
    """Added at run time (`modelmeter deploy add --upstream …`; a bad one refused clearly); the
    backup speaks Anthropic's Messages API: the chat call is translated for it, and priced at its
    rates."""
    healthy, _, failing = fakes
    with serve(tmp_path, {"name": "other", "api_base": healthy.base_url}) as server:
        bad = {"name": "rt", "upstreams": [{"api_base": healthy.base_url, "weight": "heavy"}]}
        status, body = server.api("POST", "/api/deployments", bad)
        assert status == 400 and "upstream 1: 'weight' must be a positive number" in body["error"]["message"]
        definition: dict[str, Any] = {
            "name": "rt",
            "model": "fake-model",
            "upstreams": [
                {"name": "chat-up", "api_base": failing.base_url, "model": "fail-500"},
                {
                    "name": "claude-up",
                    "api_base": healthy.base_url,
                    "api": "messages",
                    "provider": "anthropic",
                    "model": "claude-backup",
                    "priority": 1,
                    "price": PRICE_B,
                },
            ],
        }
        cli = ["deploy", "add", "rt", "--model", "fake-model", "--url", server.url, "--routing", "least_busy"]
        ups = [f"--upstream={orjson.dumps(u).decode()}" for u in definition["upstreams"]]
        done = run_cli(*cli, "--upstream", '{"api_base": "http://x", "weight": 0}')
        assert done.returncode == 1 and "upstream 1: 'weight' must be a positive number" in done.stderr, done.stderr
        done = run_cli(*cli, *ups)
        assert done.returncode == 0, done.stderr
        assert "added rt -> chat-up, claude-up (fake-model)" in done.stdout
        status, body = server.api("GET", "/api/deployments/rt")
        assert status == 200 and body["routing"] == "least_busy"
        assert [u["name"] for u in body["upstreams"]] == ["chat-up", "claude-up"]
        answer = client(server).chat.completions.create(model="rt", messages=MESSAGES)
        assert answer.object == "chat.completion" and answer.choices[0].message.content
        (row,) = server.wait_for_records("rt", 1)
        full = server.record(row["id"])
        assert full["served_by"] == "claude-up" and [a["status"] for a in full["attempts"]] == [500, 200]
        assert full["upstream_request"]["model"] == "claude-backup"  # what went to the Messages API
        assert full["spend"] == pytest.approx(cost(full, PRICE_B), rel=1e-9) and full["spend"] > 0
        assert sum(a["cost"] for a in full["attempts"]) == pytest.approx(full["spend"])


def test_a_cached_answer_has_no_attempts(tmp_path: Path, fakes: Any) -> None:
    healthy, slow, _ = fakes
    dep = {
        "name": "m",
        "model": "fake-model",
        "cache_ttl": "1m",
        "upstreams": [{"name": "a", "api_base": healthy.base_url}, {"name": "b", "api_base": slow.base_url}],
    }
    with serve(tmp_path, dep) as server:
        oa = client(server)
        for _ in range(2):
            oa.chat.completions.create(model="m", messages=MESSAGES)
        second, first = server.wait_for_records("m", 2)
        assert len(first["attempts"]) == 1 and first["served_by"] in ("a", "b") and not first["cache_hit"]
        assert second["cache_hit"] and second["attempts"] is None and second["served_by"] is None


def test_timeout_falls_back_within_the_attempts_budget(tmp_path: Path, fakes: Any) -> None:
    healthy, _, failing = fakes
    dep = {
        "name": "m",
        "model": "fake-model",
        "timeout": 0.5,  # each attempt
        "attempts_timeout": "1.2s",  # all of them
        "max_retries": 5,
        "upstreams": [
            {"name": "hang1", "api_base": failing.base_url, "model": "hang"},
            {"name": "hang2", "api_base": failing.base_url, "model": "hang", "priority": 1},
            {"name": "hang3", "api_base": failing.base_url, "model": "hang", "priority": 2},
            {"name": "ok", "api_base": healthy.base_url, "priority": 3},
        ],
    }
    with serve(tmp_path, dep) as server:
        oa = client(server)
        t = time.monotonic()
        with pytest.raises(openai.APIStatusError) as err:
            oa.chat.completions.create(model="m", messages=MESSAGES)
        took = time.monotonic() - t
        assert err.value.status_code == 504 and 1.0 <= took < 2.0, took  # the budget, not 4 x 0.5 s
        (row,) = server.wait_for_records("m", 1)
        assert [a["upstream"] for a in row["attempts"]] == ["hang1", "hang2", "hang3"]
        assert all(a["status"] is None and a["error"] for a in row["attempts"])
        assert row["attempts"][-1]["latency_ms"] < 400  # cut short by the budget
        assert row["served_by"] is None and row["http_status"] == 504


def test_sticky_by_prompt_cache_key(tmp_path: Path, fakes: Any) -> None:
    healthy, slow, _ = fakes
    dep = {
        "name": "m",
        "model": "fake-model",
        "upstreams": [{"name": "a", "api_base": healthy.base_url}, {"name": "b", "api_base": slow.base_url}],
    }
    with serve(tmp_path, dep) as server:
        oa = client(server)
        for key in ("conv-1", "conv-2", "conv-3", "conv-4"):
            for _ in range(5):
                oa.chat.completions.create(model="m", messages=MESSAGES, extra_body={"prompt_cache_key": key})
        rows = server.wait_for_records("m", 20)
        by_key: dict[str, set[str]] = {}
        for r in rows:
            full = server.record(r["id"])
            by_key.setdefault(full["request"]["prompt_cache_key"], set()).add(full["served_by"])
        assert all(len(served) == 1 for served in by_key.values()), by_key


def test_fallback_to_another_deployment(tmp_path: Path, fakes: Any) -> None:
    """An upstream may be another deployment of the gateway: its URL, model and price serve the call,
    recorded under the routed deployment's name."""
    healthy, _, failing = fakes
    deployments = [
        {"name": "hosted", "model": "fake-model", "api_base": healthy.base_url, "price": PRICE_B},
        {
            "name": "m",
            "model": "fail-500",
            "price": PRICE_A,
            "upstreams": [{"name": "local", "api_base": failing.base_url}, {"deployment": "hosted", "priority": 1}],
        },
    ]
    cfg = write_config(tmp_path / "mm.toml", database=sqlite_url(tmp_path / "mm.db"), deployments=deployments)
    with ServerProcess(cfg) as server:
        answer = client(server).chat.completions.create(model="m", messages=MESSAGES)
        assert answer.choices[0].message.content
        (row,) = server.wait_for_records("m", 1)
        full = server.record(row["id"])
        assert full["deployment"] == "m" and full["served_by"] == "deployment:hosted"
        assert [a["upstream"] for a in full["attempts"]] == ["local", "deployment:hosted"]
        assert full["api_base"] == healthy.base_url and full["spend"] == pytest.approx(cost(full, PRICE_B))
        assert server.records("hosted") == []  # metered once, as a call to "m"
        status, listed = server.api("GET", "/api/deployments/m")
        assert status == 200
        assert listed["upstreams"][1] == {
            "name": "deployment:hosted",
            "deployment": "hosted",
            "weight": 1.0,
            "priority": 1,
            "max_concurrency": None,
        }
