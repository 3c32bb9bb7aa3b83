"""eval's per-item cost behind an upstream that sends its own x-request-id (as OpenAI does): the
gateway's record is found by the x-request-id the client got (issue 11 item 4)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import ServerProcess, run_cli

MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def openai_like() -> Iterator[FakeUpstream]:
    with FakeUpstream(env={"FAKE_UPSTREAM_HEADERS": "1"}) as fake:
        yield fake


def test_eval_costs_each_item_by_its_request_id(
    openai_like: FakeUpstream,
    tmp_path: Path,
    make_config: Callable[..., Path],
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(make_config(deployments=[{"name": MODEL, "api_base": openai_like.base_url}]))
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text(
        '{"prompt": "Count", "expected": "tok0", "match": "contains"}\n'
        '{"prompt": "Say", "expected": "tok0", "match": "exact", "max_tokens": 1}\n'
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
    assert all(r["cost"] and r["cost"] > 0 for r in ev["results"])  # each item's cost, by its record
    assert ev["cost_total"] == pytest.approx(sum(r["cost"] for r in ev["results"]))
    records = server.records(MODEL, tag=f"eval:{ev['run_id']}")
    assert len(records) == 2 and all(r["request_id"].startswith("req_") for r in records)
