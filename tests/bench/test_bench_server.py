"""``bench`` and ``eval`` against a real ``modelmeter serve`` in front of the fake upstream: the run
tag on every record, client and server figures that agree, runs stored, listed and compared."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelmeter.bench.load import Shape
from modelmeter.bench.runner import BenchConfig, run_bench
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ADMIN_KEY, ServerProcess, run_cli

MODEL = "gpt-4o-mini"  # priced by genai-prices, so runs have a cost


@pytest.fixture
def server(
    fake_upstream: FakeUpstream, make_config: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> ServerProcess:
    config = make_config(deployments=[{"name": MODEL, "api_base": fake_upstream.base_url}])
    return start_server(config)


def tagged(server: ServerProcess, tag: str) -> list[dict[str, Any]]:
    return server.records(MODEL, tag=tag, limit=200)


def test_bench_cli_through_modelmeter(server: ServerProcess, tmp_path: Path, bench_home: Path) -> None:
    out = tmp_path / "r.json"
    done = run_cli(
        "bench",
        "--base-url",
        server.base_url,
        "--model",
        MODEL,
        "--requests",
        "30",
        "--concurrency",
        "4",
        "--warmup",
        "2",
        "--output-tokens",
        "12",
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    run_id, tag = report["run_id"], f"bench:{report['run_id']}"
    url = f"{server.url}/models/{MODEL}?tag={tag}&window=1h&live=1"
    assert report["usage_url"] == url
    assert f"Watch this run live: {url}" in done.stderr and url in done.stdout

    comparison = report["server_comparison"]
    assert comparison["agree"], comparison
    rows = {r["metric"]: r for r in comparison["rows"]}
    assert rows["requests"]["server"] == rows["requests"]["client"] == 30
    assert rows["completion_tokens"]["server"] == 30 * 12 == report["total_output_tokens"]
    assert rows["prompt_tokens"]["server"] == report["total_input_tokens"]
    assert rows["ttft_ms p50"]["server"] <= rows["ttft_ms p50"]["client"]
    assert comparison["spend"] > 0 and "Client vs server" in done.stdout

    records = tagged(server, tag)
    assert len(records) == 30 and comparison["records_tagged"] == 30
    assert all(tag in r["tags"] and r["metadata"]["bench_run"] == run_id for r in records)
    assert all(r["stream"] and r["status"] == "success" for r in records)
    warm = tagged(server, f"{tag}:warmup")
    assert len(warm) == 2 and all(r["metadata"]["bench_run"] == f"{run_id}:warmup" for r in warm)

    status, stored = server.api("GET", f"/api/runs/{run_id}")
    assert status == 200 and stored["kind"] == "bench" and stored["deployment"] == MODEL
    assert stored["report"]["completed"] == 30 and stored["params"]["warmup"] == 2
    assert (bench_home / "runs" / f"{run_id}.json").is_file()


async def test_not_streamed_comparison(server: ServerProcess) -> None:
    cfg = BenchConfig(
        model=MODEL,
        run_id="ns1",
        base_url=server.base_url,
        stream=False,
        progress=False,
        admin_key=ADMIN_KEY,
        shape=Shape(requests=12, concurrency=3),
        input_tokens=20,
        output_tokens=5,
    )
    report = await run_bench(cfg)
    comparison = report["server_comparison"]
    assert comparison["agree"], comparison
    assert [r["stream"] for r in tagged(server, "bench:ns1")] == [False] * 12


async def test_failures_agree_too(
    fake_upstream: FakeUpstream, make_config: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> None:
    config = make_config(deployments=[{"name": "broken", "model": "fail-500", "api_base": fake_upstream.base_url}])
    srv = start_server(config)
    cfg = BenchConfig(
        model="broken",
        run_id="f1",
        base_url=srv.base_url,
        progress=False,
        admin_key=ADMIN_KEY,
        shape=Shape(requests=4, concurrency=2),
    )
    report = await run_bench(cfg)
    assert report["failed"] == 4 and report["server_comparison"]["agree"], report["server_comparison"]


def test_list_compare_and_eval(server: ServerProcess, tmp_path: Path, bench_home: Path) -> None:
    ids = []
    for stream in ("--stream", "--no-stream"):
        out = tmp_path / f"{stream}.json"
        done = run_cli(
            "bench",
            "--base-url",
            server.base_url,
            "--model",
            MODEL,
            "-n",
            "10",
            "-c",
            "2",
            stream,
            "--json",
            str(out),
            "-q",
        )
        assert done.returncode == 0, done.stderr
        ids.append(json.loads(out.read_text())["run_id"])

    dataset = tmp_path / "qa.jsonl"
    dataset.write_text(
        '{"prompt": "Count", "expected": "tok0 tok1", "match": "contains"}\n'
        '{"prompt": "Say", "expected": "tok0", "match": "exact", "max_tokens": 1}\n'
        '{"prompt": "Spell", "expected": "^nope$", "match": "regex"}\n'
    )
    out = tmp_path / "eval.json"
    done = run_cli(
        "eval",
        "--base-url",
        server.base_url,
        "--model",
        MODEL,
        "--dataset",
        str(dataset),
        "--max-tokens",
        "3",
        "--json",
        str(out),
        "-q",
    )
    assert done.returncode == 0, done.stderr
    ev = json.loads(out.read_text())
    assert (ev["items"], ev["correct"], ev["accuracy"]) == (3, 2, round(2 / 3, 6))
    assert [r["correct"] for r in ev["results"]] == [True, True, False]
    assert ev["results"][1]["answer"] == "tok0" and ev["results"][0]["answer"] == "tok0 tok1 tok2"
    assert all(r["cost"] and r["cost"] > 0 for r in ev["results"])  # each item's cost, by its record
    assert ev["cost_total"] == pytest.approx(sum(r["cost"] for r in ev["results"]))
    assert ev["cost_per_item"] == pytest.approx(ev["cost_total"] / 3)
    records = tagged(server, f"eval:{ev['run_id']}")
    assert len(records) == 3 and all(r["metadata"]["eval_run"] == ev["run_id"] for r in records)
    assert "Accuracy" in done.stdout and "66.7% (2 of 3)" in done.stdout
    ids.append(ev["run_id"])

    done = run_cli("bench", "list", "--url", server.url, "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [r["id"] for r in listed] == ids[::-1] and [r["kind"] for r in listed] == ["eval", "bench", "bench"]
    done = run_cli("bench", "list", "--url", server.url)
    assert all(i in done.stdout for i in ids) and "66.7% accuracy" in done.stdout

    done = run_cli("bench", "compare", ids[0], ids[1], "--url", server.url, "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["metric"]: r for r in json.loads(done.stdout)["rows"]}
    assert rows["completed"]["a"] == rows["completed"]["b"] == 10 and rows["completed"]["delta"] == 0
    assert rows["request_throughput"]["delta"] == pytest.approx(
        rows["request_throughput"]["b"] - rows["request_throughput"]["a"]
    )
    done = run_cli("bench", "compare", ids[0], ids[1], "--url", server.url)
    assert "Request throughput" in done.stdout and "differs" in done.stdout  # stream yes/no

    # the server gone: the local files answer
    server.stop()
    done = run_cli("bench", "list", "--url", server.url, "--json")
    assert [r["id"] for r in json.loads(done.stdout)] == ids[::-1]
    done = run_cli("bench", "compare", ids[0], ids[2], "--url", server.url)
    assert done.returncode == 0 and ids[2] in done.stdout
