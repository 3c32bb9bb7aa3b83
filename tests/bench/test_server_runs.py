"""Issue 13 item 1: ``POST /api/runs`` starts a bench or an eval on the server, through the
gateway's own /v1, stoppable, its state in the runs table; its figures equal the server's records."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ADMIN_KEY, ServerProcess, run_cli

MODEL = "gpt-4o-mini"


@pytest.fixture
def server(
    fake_upstream: FakeUpstream, make_config: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> ServerProcess:
    config = make_config(deployments=[{"name": MODEL, "api_base": fake_upstream.base_url}])
    return start_server(config)


def wait_status(server: ServerProcess, run_id: str, statuses: set[str], timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, run = server.api("GET", f"/api/runs/{run_id}")
        assert status == 200, run
        if run["report"]["status"] in statuses or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def test_server_bench_figures_equal_the_records(server: ServerProcess) -> None:
    body = {"kind": "bench", "model": MODEL, "requests": 24, "concurrency": 3, "output_tokens": 9, "warmup": 2}
    body["slos_ms"] = {"ttft": 5000}
    status, run = server.api("POST", "/api/runs", body)
    assert status == 201, run
    run_id = run["id"]
    assert run["report"]["status"] == "running" and run["params"]["origin"] == "server"
    tag = f"bench:{run_id}"
    assert run["report"]["usage_url"] == f"/models/{MODEL}?tag={tag}&window=1h&live=1"
    done = wait_status(server, run_id, {"done", "failed"})
    report = done["report"]
    assert report["status"] == "done", report
    assert report["completed"] == 24 and report["live"]["done"] == 24 and report["good_requests"] == 24
    records = server.records(MODEL, tag=tag, limit=200)
    assert len(records) == 24 and all(r["status"] == "success" for r in records)
    assert sum(r["completion_tokens"] for r in records) == report["total_output_tokens"] == 24 * 9
    assert sum(r["prompt_tokens"] for r in records) == report["total_input_tokens"]
    comparison = report["server_comparison"]
    assert comparison["agree"], comparison
    assert comparison["spend"] == pytest.approx(sum(r["spend"] for r in records))
    assert len(server.records(MODEL, tag=f"{tag}:warmup")) == 2
    status, listed = server.api("GET", "/api/runs")
    assert listed["data"][0]["id"] == run_id


def test_server_run_stops(server: ServerProcess) -> None:
    status, run = server.api(
        "POST", "/api/runs", {"kind": "bench", "model": MODEL, "duration_s": 120, "concurrency": 2, "stream": False}
    )
    assert status == 201, run
    deadline = time.monotonic() + 10
    while server.api("GET", f"/api/runs/{run['id']}")[1]["report"]["live"]["done"] < 5:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    status, answer = server.api("POST", f"/api/runs/{run['id']}/stop")
    assert status == 200 and answer["stopping"], answer
    stopped = wait_status(server, run["id"], {"stopped", "done", "failed"}, 10)
    assert stopped["report"]["status"] == "stopped" and stopped["report"]["interrupted"]
    status, again = server.api("POST", f"/api/runs/{run['id']}/stop")
    assert status == 409 and again["error"]["code"] == "run_not_running"


def test_server_eval_has_per_item_grades(server: ServerProcess) -> None:
    status, run = server.api("POST", "/api/runs", {"kind": "eval", "model": MODEL, "concurrency": 8})
    assert status == 201, run
    report = wait_status(server, run["id"], {"done", "failed"})["report"]
    assert report["status"] == "done" and report["items"] == 50
    rows = report["results"]
    assert len(rows) == 50 and all(r["answer"].startswith("tok0") and r["correct"] is False for r in rows)
    assert all(r["cost"] is not None and r["cost"] > 0 and r["latency_ms"] > 0 for r in rows)
    assert report["accuracy"] == 0 and report["cost_total"] == pytest.approx(sum(r["cost"] for r in rows))


def test_start_errors_are_clear(server: ServerProcess) -> None:
    for body, param in (
        ({"kind": "bench", "model": "nope"}, "model"),
        ({"kind": "bench", "model": MODEL, "concurrency": 0}, "concurrency"),
        ({"kind": "eval", "model": MODEL, "grader": "fuzzy"}, "grader"),
        ({"kind": "bench", "model": MODEL, "bogus": 1}, "bogus"),
    ):
        status, answer = server.api("POST", "/api/runs", body)
        assert status in (400, 404) and answer["error"]["param"] == param, (body, answer)
    status, answer = server.api("POST", "/api/runs/none/stop")
    assert status == 404
    status, _ = server.api("POST", "/api/runs", {"kind": "bench", "model": MODEL}, auth=False)
    assert status == 401


def test_cli_sweep_and_runs_commands(server: ServerProcess, tmp_path: Path, bench_home: Path) -> None:
    env = {"MODELMETER_ADMIN_KEY": ADMIN_KEY, "MODELMETER_URL": server.url}
    out = tmp_path / "sweep.json"
    done = run_cli(
        "bench", "--base-url", server.base_url, "--model", MODEL, "-n", "6", "--output-tokens", "4",
        "--sweep", "1,3", "--json", str(out), "-q", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Sweep: throughput vs latency" in done.stdout
    sweep = json.loads(out.read_text())
    assert sweep["sweep"] == ["1", "3"] and [r["load"] for r in sweep["runs"]] == [
        "6 requests, concurrency 1",
        "6 requests, concurrency 3",
    ]
    a, b = (r["run_id"] for r in sweep["runs"])
    for run_id in (a, b):
        records = server.records(MODEL, tag=f"bench:{run_id}")
        assert len(records) == 6 and sum(r["completion_tokens"] for r in records) == 24

    listed = run_cli("runs", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)][:2] == [b, a]
    shown = run_cli("runs", "show", a, env=env)
    assert shown.returncode == 0 and f"bench {a}" in shown.stdout and "Client vs server" in shown.stdout, shown
    compared = run_cli("runs", "compare", a, b, "--json", env=env)
    assert compared.returncode == 0 and json.loads(compared.stdout)["b"] == b
    target = tmp_path / "a.json"
    exported = run_cli("runs", "export", a, "-o", str(target), env=env)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(target.read_text())["report"]["total_output_tokens"] == 24
    bad = run_cli("bench", "--model", MODEL, "--base-url", server.base_url, "--sweep", "1,x", env=env)
    assert bad.returncode == 2 and "--sweep must be numbers" in bad.stderr


def test_cli_shows_a_server_eval_with_its_items(server: ServerProcess) -> None:
    status, run = server.api("POST", "/api/runs", {"kind": "eval", "model": MODEL, "concurrency": 8})
    assert status == 201
    wait_status(server, run["id"], {"done", "failed"})
    shown = run_cli("runs", "show", run["id"], "--items", "all", env={"MODELMETER_ADMIN_KEY": ADMIN_KEY,
                                                                      "MODELMETER_URL": server.url})  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "What is 144 divided by 12?" in shown.stdout and "✗" in shown.stdout


def test_a_server_requiring_keys_runs_with_a_virtual_key(
    fake_upstream: FakeUpstream, make_config: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(
        make_config(deployments=[{"name": MODEL, "api_base": fake_upstream.base_url}], require_keys=True)
    )
    status, answer = server.api("POST", "/api/runs", {"kind": "bench", "model": MODEL, "requests": 3})
    assert status == 400 and answer["error"]["param"] == "api_key", answer
    status, made = server.api("POST", "/api/keys", {"alias": "bench-team"})
    assert status == 201
    body = {"kind": "bench", "model": MODEL, "requests": 5, "api_key": made["key"]}
    status, run = server.api("POST", "/api/runs", body)
    assert status == 201 and made["key"] not in json.dumps(run)  # the key is never stored nor echoed
    report = wait_status(server, run["id"], {"done", "failed"})["report"]
    assert report["status"] == "done" and report["completed"] == 5, report
    records = server.records(MODEL, tag=f"bench:{run['id']}")
    assert len(records) == 5 and {r["key_alias"] for r in records} == {"bench-team"}
    status, listed = server.api("GET", f"/api/runs/{run['id']}")
    assert made["key"] not in json.dumps(listed)
