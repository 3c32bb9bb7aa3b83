"""``bench`` and ``eval`` against a real ``modelmeter serve`` running the embedded SmolLM2 model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmeter.bench.eval import bundled_dataset
from tests.helpers import ServerProcess, run_cli, sqlite_url, write_config

pytestmark = [pytest.mark.model, pytest.mark.timeout(240)]
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("model-server")
    config = write_config(
        tmp / "modelmeter.toml",
        database=sqlite_url(tmp / "mm.db"),
        local_threads=1,
        deployments=[{"name": MODEL, "provider": "local"}],
    )
    with ServerProcess(config, startup_timeout=180, log_dir=tmp / "logs") as srv:
        yield srv


def test_bench_against_the_embedded_model(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = run_cli(
        "bench",
        "--base-url",
        server.base_url,
        "--model",
        MODEL,
        "--requests",
        "8",
        "--concurrency",
        "2",
        "--output-tokens",
        "16",
        "--input-tokens",
        "48",
        "--json",
        str(out),
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["completed"] + report["failed"] == 8
    tag = f"bench:{report['run_id']}"
    records = server.records(MODEL, tag=tag)
    assert len(records) == 8 and all(tag in r["tags"] for r in records)
    comparison = report["server_comparison"]
    assert comparison["agree"], [r for r in comparison["rows"] if not r["ok"]]
    rows = {r["metric"]: r for r in comparison["rows"]}
    assert rows["completion_tokens"]["client"] == rows["completion_tokens"]["server"] > 0
    assert rows["prompt_tokens"]["client"] == rows["prompt_tokens"]["server"] > 0
    assert report["ttft_ms"]["p50"] > 0 and report["tpot_ms"]["p50"] > 0 and report["itl_ms"]["p50"] is not None
    # llama.cpp's server closes kept-alive connections after a stream; the gateway re-sends on a
    # fresh connection, so no call may fail.
    assert report["failed"] == 0, report["errors"]
    assert report["completed"] == 8 and report["total_output_tokens"] <= 8 * 16


def test_eval_against_the_embedded_model(server: ServerProcess, tmp_path: Path) -> None:
    dataset = tmp_path / "five.jsonl"
    dataset.write_text("".join(bundled_dataset().read_text().splitlines(keepends=True)[:5]))
    out = tmp_path / "e.json"
    done = run_cli(
        "eval",
        "--base-url",
        server.base_url,
        "--model",
        MODEL,
        "--dataset",
        str(dataset),
        "--max-tokens",
        "16",
        "--concurrency",
        "2",
        "--json",
        str(out),
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["items"] == 5 and 0 <= report["accuracy"] <= 1
    assert report["correct"] == sum(r["correct"] for r in report["results"])
    answered = [r for r in report["results"] if r["answer"] is not None]
    assert answered and all(r["answer"].strip() and r["latency_ms"] > 0 for r in answered)
    assert report["cost_total"] is not None  # read from the server's records (the embedded model is free)
    assert len(server.records(MODEL, tag=f"eval:{report['run_id']}")) == 5
    assert "Accuracy" in done.stdout
    assert len(answered) == 5, [r for r in report["results"] if r["answer"] is None]
