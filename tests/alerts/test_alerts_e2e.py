"""Alerts end to end: the real server with a short evaluation interval, the fake upstream failing on
purpose, and webhook receivers started here (one fails its first two posts). A rule fires, then
resolves; each receiver gets exactly one firing and one resolved body; every delivery attempt is in
the history API; the webhook URLs (they carry tokens) are in no API answer and no log line."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from modelmeter.units import PICO
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, http_json, sqlite_url, toml_value, wait_for, write_config

FLAKY_CALLS = 10  # the fake fails the first N calls of a "flaky-N" model with a 503
PRICE = {"input": 1.0, "output": 2.0}


class Receiver:
    """A webhook receiver: records every body; fails the first ``fail_first`` posts with a 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[Any] = []
        self.posts = 0
        self.token = uuid.uuid4().hex  # the secret part of the URL
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.posts += 1
                failing = outer.posts <= fail_first or self.path != f"/hook/{outer.token}"
                if not failing:
                    outer.bodies.append(orjson.loads(raw))
                self.send_response(500 if failing else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook/{self.token}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    plain, flaky = Receiver(), Receiver(fail_first=2)
    yield plain, flaky
    plain.close()
    flaky.close()


def _config(path: Path, fake: FakeUpstream, plain: Receiver, flaky: Receiver) -> Path:
    model = f"alerts-flaky-{FLAKY_CALLS}-{uuid.uuid4().hex[:8]}"
    dep = {"name": "api", "model": model, "api_base": fake.base_url, "price": PRICE, "max_retries": 0}
    write_config(path, database=sqlite_url(path.parent / "mm.db"), deployments=[dep], alert_interval=0.3)
    rules = [
        {"name": "api-errors", "kind": "error_rate", "deployment": "api", "threshold": 50, "window": "10m",
         "for": "1s", "webhook": plain.url},
        {"name": "api-errors-slack", "kind": "error_rate", "deployment": "api", "threshold": 50, "window": "10m",
         "for": "1s", "webhook_env": "MM_TEST_HOOK", "format": "slack"},
        {"name": "api-spend", "kind": "spend", "deployment": "api", "threshold": 1000, "window": "1h"},
    ]  # fmt: skip
    lines = [path.read_text()]
    for rule in rules:
        lines += ["[[alerts]]", *(f"{k} = {toml_value(v)}" for k, v in rule.items()), ""]
    path.write_text("\n".join(lines))
    return path


def _calls(server: ServerProcess, n: int) -> list[int]:
    """The HTTP status of each of ``n`` calls."""
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=20)
    statuses = []
    for _ in range(n):
        try:
            client.chat.completions.create(model="api", messages=[{"role": "user", "content": "hi there"}])
            statuses.append(200)
        except openai.APIStatusError as exc:
            statuses.append(exc.status_code)
    return statuses


def _rule(server: ServerProcess, name: str) -> dict[str, Any]:
    status, body = server.api("GET", "/api/alerts")
    assert status == 200, body
    return next(r for r in body["data"] if r["name"] == name)


def test_rule_fires_once_then_resolves_once(
    fake_upstream: FakeUpstream, receivers: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    plain, flaky = receivers
    config = _config(tmp_path / "mm.toml", fake_upstream, plain, flaky)
    with ServerProcess(config, env={"MM_TEST_HOOK": flaky.url}, log_dir=tmp_path / "server") as server:
        answers: list[Any] = []

        def api(method: str, path: str, body: Any = None) -> Any:
            status, answer = server.api(method, path, body)
            answers.append(answer)
            return status, answer

        assert _rule(server, "api-errors")["state"] == "ok"
        assert http_json("GET", server.url + "/api/alerts")[0] == 401  # the admin key guards it
        assert _calls(server, FLAKY_CALLS) == [503] * FLAKY_CALLS  # all fail: error rate 100 %
        wait_for(lambda: len(plain.bodies) >= 1, 20, message="a firing webhook")
        assert _rule(server, "api-errors")["state"] == "firing"
        time.sleep(1.0)  # more evaluations while firing: no second notification
        assert len(plain.bodies) == 1
        assert _calls(server, 3 * FLAKY_CALLS) == [200] * 3 * FLAKY_CALLS  # all succeed: 10 of 40 failed, 25 %
        wait_for(lambda: len(plain.bodies) >= 2, 20, message="a resolved webhook")
        wait_for(lambda: len(flaky.bodies) >= 2, 30, message="the flaky receiver's two bodies")
        time.sleep(1.0)
        assert len(plain.bodies) == 2 and len(flaky.bodies) == 2

        firing, resolved = plain.bodies
        assert firing["status"] == "firing" and resolved["status"] == "resolved"
        assert firing["rule"] == resolved["rule"] == "api-errors"
        assert firing["value"] == 100.0 and firing["threshold"] == resolved["threshold"] == 50.0
        assert firing["unit"] == "percent" and firing["window_seconds"] == 600.0 and firing["for_seconds"] == 1.0
        # resolved at the first evaluation not above 50 %: 10 failures out of 10 + n successes, n >= 10
        # (exactly 50 %, n = 10, is not above the threshold: a slow run can evaluate right there)
        n = round(100 * FLAKY_CALLS / resolved["value"]) - FLAKY_CALLS
        assert FLAKY_CALLS <= n <= 3 * FLAKY_CALLS and resolved["value"] == pytest.approx(100 * 10 / (10 + n), abs=1e-3)
        assert resolved["started_at"] == firing["started_at"] and resolved["resolved_at"] == resolved["at"]
        assert firing["link"].startswith(f"{server.url}/models/api?start=") and "status=error" in firing["link"]
        assert "FIRING" in flaky.bodies[0]["text"] and "RESOLVED" in flaky.bodies[1]["text"]
        assert set(flaky.bodies[0]) == {"text"}

        status, history = api("GET", "/api/alerts/api-errors-slack/history")
        assert status == 200
        changes = {e["status"]: e for e in history["data"]}
        assert [e["status"] for e in history["data"]] == ["resolved", "firing", "pending"]
        tries = changes["firing"]["deliveries"]
        assert [(t["attempt"], t["ok"], t["http_status"]) for t in tries] == [
            (1, False, 500),
            (2, False, 500),
            (3, True, 200),
        ]
        assert [(t["attempt"], t["ok"]) for t in changes["resolved"]["deliveries"]] == [(1, True)]
        assert changes["pending"]["deliveries"] == []
        plain_history = api("GET", "/api/alerts/api-errors/history")[1]["data"]
        assert [len(e["deliveries"]) for e in plain_history] == [1, 1, 0]

        # The spend rule's value is the records' spend, summed (from the rollups, not the records).
        rows = server.records("api", limit=100)
        assert len(rows) == 4 * FLAKY_CALLS
        expected = sum(round(Decimal(repr(r["spend"])) * PICO) for r in rows)
        assert expected > 0
        wait_for(lambda: round(Decimal(repr(_rule(server, "api-spend")["value"])) * PICO) == expected, 10,
                 message="the spend rule's value to be the records' sum")  # fmt: skip

        # API rules: made, listed, refused twice, deleted; config rules stay.
        secret = f"http://hooks.example.test/services/{uuid.uuid4().hex}"
        made = {"name": "all-spend", "kind": "spend", "threshold": 5, "window": "1h", "webhook": secret}
        status, created = api("POST", "/api/alerts", made)
        assert status == 201 and created["webhook"] == "hooks.example.test" and created["source"] == "api"
        assert api("POST", "/api/alerts", made)[0] == 409
        assert api("POST", "/api/alerts", {**made, "name": "api-errors"})[0] == 409
        status, bad = api("POST", "/api/alerts", {**made, "name": "x", "kind": "weird"})
        assert status == 400 and bad["error"]["param"] == "kind"
        status, listed = api("GET", "/api/alerts")
        assert {r["name"] for r in listed["data"]} == {"api-errors", "api-errors-slack", "api-spend", "all-spend"}
        assert {r["webhook"] for r in listed["data"]} == {"127.0.0.1", "hooks.example.test", None}
        assert api("DELETE", "/api/alerts/api-errors")[0] == 409
        assert api("DELETE", "/api/alerts/all-spend")[0] == 204
        assert api("DELETE", "/api/alerts/all-spend")[0] == 404
        assert api("GET", "/api/alerts/nope/history")[0] == 404

        seen = orjson.dumps(answers).decode() + server.stdout + server.stderr
        for url in (plain.url, flaky.url, secret):
            assert url not in seen and url.rsplit("/", 1)[1] not in seen


def test_key_budget_rule_fires_at_its_level(
    fake_upstream: FakeUpstream, receivers: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    """A rule made through the API warns when a virtual key has spent 50 % of its budget; the value
    sent is the key's spend over its budget, as /api/keys shows them."""
    plain, _ = receivers
    dep = {
        "name": "priced",
        "model": "fake-model",
        "api_base": fake_upstream.base_url,
        "price": {"input": 500.0, "output": 500.0},
    }
    config = write_config(
        tmp_path / "mm.toml",
        database=sqlite_url(tmp_path / "mm.db"),
        deployments=[dep],
        alert_interval=0.3,
        require_keys=True,
    )
    with ServerProcess(config, log_dir=tmp_path / "server") as server:
        status, made = server.api("POST", "/api/keys", {"alias": "team-a", "budget_usd": 0.05})
        assert status == 201
        rule = {"name": "team-a-50", "kind": "key_budget", "key": "team-a", "threshold": 50, "webhook": plain.url}
        assert server.api("POST", "/api/alerts", rule)[0] == 201
        client = openai.OpenAI(base_url=server.base_url, api_key=made["key"], max_retries=0, timeout=20)

        def key() -> dict[str, Any]:
            return next(k for k in server.api("GET", "/api/keys")[1]["data"] if k["alias"] == "team-a")

        calls = 0
        while key()["spent_usd"] < 0.025:  # one call at a time until half the budget is spent
            client.chat.completions.create(model="priced", messages=[{"role": "user", "content": "hi there"}])
            calls += 1
            wait_for(lambda n=calls: len(server.records("priced")) >= n, 10)
            time.sleep(0.05)
        assert 1 < calls < 20
        wait_for(lambda: plain.bodies, 10, message="the budget warning")
        time.sleep(1.0)
        assert len(plain.bodies) == 1
        body = plain.bodies[0]
        spent = key()
        assert body["status"] == "firing" and body["rule"] == "team-a-50" and body["key"] == "team-a"
        assert body["threshold"] == 50.0 and body["unit"] == "percent"
        assert body["value"] == pytest.approx(100 * spent["spent_usd"] / spent["budget_usd"], abs=1e-4)
        assert body["value"] >= 50.0
        assert _rule(server, "team-a-50")["state"] == "firing"
