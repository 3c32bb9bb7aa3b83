"""Sweeps on the server (``POST /api/runs`` with ``"kind": "sweep"``): one bench run per level,
against a fake upstream, each run's figures equal to its records; the sweep's report is the curve;
a sweep stops; bad levels are refused clearly; an ARC eval runs on the server with the grid grader."""

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
    return start_server(make_config(deployments=[{"name": MODEL, "api_base": fake_upstream.base_url}]))


def wait_status(server: ServerProcess, run_id: str, statuses: set[str], timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, run = server.api("GET", f"/api/runs/{run_id}")
        assert status == 200, run
        if run["report"]["status"] in statuses:
            return run
        assert time.monotonic() < deadline, run["report"]
        time.sleep(0.2)


def test_concurrency_sweep_makes_one_run_and_one_point_per_level(server: ServerProcess) -> None:
    levels = [1, 2, 4]
    body = {"kind": "sweep", "model": MODEL, "sweep_by": "concurrency", "levels": levels, "requests": 12}
    body["output_tokens"] = 5
    status, sweep = server.api("POST", "/api/runs", body)
    assert status == 201, sweep
    assert sweep["kind"] == "sweep" and sweep["report"]["status"] == "running"
    assert [p["status"] for p in sweep["report"]["points"]] == ["pending"] * 3
    assert sweep["params"]["load"] == "concurrency 1, 2, 4; 12 requests each"

    # Progress is visible while it runs: some point is running, with live figures.
    deadline = time.monotonic() + 20
    while True:
        report = server.api("GET", f"/api/runs/{sweep['id']}")[1]["report"]
        running = [p for p in report["points"] if p["status"] == "running"]
        if (running and "live" in running[0]) or report["status"] != "running":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)

    done = wait_status(server, sweep["id"], {"done", "failed", "stopped"})["report"]
    assert done["status"] == "done", done
    points = done["points"]
    assert [p["level"] for p in points] == levels and all(p["status"] == "done" for p in points)
    for level, point in zip(levels, points, strict=True):
        status, run = server.api("GET", f"/api/runs/{point['run_id']}")
        assert status == 200 and run["kind"] == "bench"
        assert run["params"]["sweep"] == sweep["id"] and run["params"]["load"] == f"12 requests, concurrency {level}"
        report = run["report"]
        records = server.records(MODEL, tag=f"bench:{point['run_id']}")
        assert len(records) == report["completed"] == point["completed"] == 12
        assert sum(r["completion_tokens"] for r in records) == 12 * 5
        assert point["request_throughput"] == report["request_throughput"] > 0
        assert point["output_token_throughput"] == report["output_token_throughput"] > 0
        assert point["e2e_p50_ms"] == report["e2e_ms"]["p50"] and point["e2e_p95_ms"] == report["e2e_ms"]["p95"]
        assert 0 < point["e2e_p50_ms"] <= point["e2e_p95_ms"]
    status, listed = server.api("GET", "/api/runs?kind=sweep")
    assert status == 200 and [r["id"] for r in listed["data"]] == [sweep["id"]]

    # The terminal shows it too: the list, and the curve as a table with a row per level.
    env = {"MODELMETER_ADMIN_KEY": ADMIN_KEY, "MODELMETER_URL": server.url, "COLUMNS": "200"}
    cli_list = run_cli("runs", "list", "--kind", "sweep", "--json", env=env)
    assert cli_list.returncode == 0 and [r["id"] for r in json.loads(cli_list.stdout)] == [sweep["id"]], cli_list
    shown = run_cli("runs", "show", sweep["id"], env=env)
    assert shown.returncode == 0, shown.stderr
    assert "Sweep: throughput vs latency" in shown.stdout
    for point in points:
        assert point["run_id"] in shown.stdout


def test_rate_sweep_and_stop(server: ServerProcess) -> None:
    body = {"kind": "sweep", "model": MODEL, "sweep_by": "rate", "levels": [2, 4, 8], "duration_s": 60}
    status, sweep = server.api("POST", "/api/runs", body)
    assert status == 201, sweep
    deadline = time.monotonic() + 15
    while True:  # wait until the first level has sent something
        points = server.api("GET", f"/api/runs/{sweep['id']}")[1]["report"]["points"]
        if points[0].get("live", {}).get("done", 0) >= 2:
            break
        assert time.monotonic() < deadline, points
        time.sleep(0.1)
    first = points[0]["run_id"]
    assert server.api("GET", f"/api/runs/{first}")[1]["params"]["load"] == "60s, 2 req/s Poisson (seed 0)"
    status, answer = server.api("POST", f"/api/runs/{sweep['id']}/stop")
    assert status == 200 and answer["stopping"], answer
    report = wait_status(server, sweep["id"], {"done", "failed", "stopped"}, 15)["report"]
    assert report["status"] == "stopped", report
    assert report["points"][0]["status"] == "stopped" and report["points"][0]["run_id"] == first
    assert [p["status"] for p in report["points"][1:]] == ["pending", "pending"]
    assert server.api("GET", f"/api/runs/{first}")[1]["report"]["interrupted"] is True
    status, again = server.api("POST", f"/api/runs/{sweep['id']}/stop")
    assert status == 409 and again["error"]["code"] == "run_not_running", again


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"sweep_by": "concurrency", "levels": [1, 2.5]}, "whole numbers"),
        ({"sweep_by": "concurrency", "levels": [0]}, "whole numbers"),
        ({"sweep_by": "rate", "levels": [0]}, "above 0"),
        ({"levels": []}, "levels"),
        ({"levels": list(range(1, 14))}, "levels"),
        ({}, "needs 'levels'"),
    ],
)
def test_bad_sweeps_are_refused(server: ServerProcess, body: dict[str, Any], message: str) -> None:
    status, answer = server.api("POST", "/api/runs", {"kind": "sweep", "model": MODEL, **body})
    assert status == 400 and message in str(answer), answer
    status, answer = server.api("POST", "/api/runs", {"kind": "bench", "model": MODEL, "levels": [1]})
    assert status == 400 and "for a sweep" in str(answer), answer


def test_arc_eval_on_the_server_uses_the_grid_grader(server: ServerProcess) -> None:
    status, run = server.api("POST", "/api/runs", {"kind": "eval", "model": MODEL, "dataset": "arc_agi_subset"})
    assert status == 201, run
    assert run["params"]["dataset"] == "(bundled) arc_agi_subset.jsonl"
    report = wait_status(server, run["id"], {"done", "failed"})["report"]
    assert report["status"] == "done" and 20 <= report["items"] <= 40, report
    rows = report["results"]
    assert {r["match"] for r in rows} == {"grid"}
    # The fake upstream answers words, never a grid: every item is graded wrong, none errors.
    assert all(r["answer"] and r["correct"] is False and r["error"] is None for r in rows)
    status, answer = server.api("POST", "/api/runs", {"kind": "eval", "model": MODEL, "dataset": "mmlu"})
    assert status == 400 and answer["error"]["param"] == "dataset", answer
