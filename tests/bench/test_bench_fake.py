"""``bench`` straight against the fake upstream (not a modelmeter server): timings, shapes, endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmeter.bench.load import Shape
from modelmeter.bench.runner import BenchConfig, BenchError, run_bench
from tests.fakes.upstream import FakeUpstream
from tests.helpers import closed_port_url, run_cli


@pytest.fixture(scope="module")
def slow_fake() -> Iterator[FakeUpstream]:
    """First token after 50 ms, then one every 10 ms."""
    with FakeUpstream(env={"FAKE_TTFT_MS": "50", "FAKE_ITL_MS": "10"}) as fake:
        yield fake


def cfg(base_url: str, **kw: object) -> BenchConfig:
    defaults: dict[str, object] = {
        "model": "fake-model",
        "run_id": "t1",
        "base_url": base_url,
        "progress": False,
        "input_tokens": 32,
        "output_tokens": 10,
    }
    return BenchConfig(**{**defaults, **kw})  # type: ignore[arg-type]


async def test_timings_match_the_fake(slow_fake: FakeUpstream) -> None:
    r = await run_bench(cfg(slow_fake.base_url, shape=Shape(requests=16, concurrency=4)))
    assert (r["completed"], r["failed"], r["total_output_tokens"]) == (16, 0, 160)
    assert 49 <= r["ttft_ms"]["p50"] <= 70, r["ttft_ms"]
    assert 49 <= r["ttft_ms"]["mean"] <= 75, r["ttft_ms"]
    assert 8.5 <= r["itl_ms"]["mean"] <= 12, r["itl_ms"]
    assert 8.5 <= r["itl_ms"]["p50"] <= 12, r["itl_ms"]
    assert 9 <= r["tpot_ms"]["mean"] <= 11.5, r["tpot_ms"]
    assert 9 <= r["tpot_ms"]["p50"] <= 11.5, r["tpot_ms"]
    # E2E = TTFT + 9 gaps of 10 ms
    assert 138 <= r["e2e_ms"]["p50"] <= 165, r["e2e_ms"]
    assert r["server_comparison"] is None and r["usage_url"] is None
    assert 4 * 1000 / 160 <= r["request_throughput"] <= 4 * 1000 / 135
    assert r["output_token_throughput"] == pytest.approx(r["request_throughput"] * 10, rel=1e-6)


async def test_not_streamed(slow_fake: FakeUpstream) -> None:
    r = await run_bench(cfg(slow_fake.base_url, stream=False, shape=Shape(requests=6, concurrency=3)))
    assert r["completed"] == 6 and r["stream"] is False
    # the whole answer arrives at once: TTFT is the end-to-end latency; no gaps between tokens
    assert r["ttft_ms"]["p50"] == r["e2e_ms"]["p50"] and 138 <= r["e2e_ms"]["p50"] <= 170
    assert r["itl_ms"]["p50"] is None


async def test_completions_and_embeddings(fake_upstream: FakeUpstream) -> None:
    r = await run_bench(cfg(fake_upstream.base_url, endpoint="completions", shape=Shape(requests=5)))
    assert r["completed"] == 5 and r["total_output_tokens"] == 50 and r["total_input_tokens"] == 5 * 32
    r = await run_bench(cfg(fake_upstream.base_url, endpoint="embeddings", shape=Shape(requests=5)))
    assert r["completed"] == 5 and r["total_output_tokens"] == 0 and r["total_input_tokens"] == 5 * 32
    assert r["ttft_ms"]["p50"] is None and r["e2e_ms"]["p50"] is not None


async def test_rate_duration_and_goodput(fake_upstream: FakeUpstream) -> None:
    shape = Shape(requests=None, duration=0.5, rate=40.0, concurrency=None, seed=3)
    r = await run_bench(cfg(fake_upstream.base_url, shape=shape, slos={"ttft": 10_000.0}))
    assert 8 <= r["completed"] <= 40 and r["failed"] == 0
    assert r["goodput"] == r["request_throughput"] and r["good_requests"] == r["completed"]


async def test_failures_are_counted_not_raised(fake_upstream: FakeUpstream) -> None:
    r = await run_bench(cfg(fake_upstream.base_url, model="fail-500", shape=Shape(requests=3)))
    assert (r["completed"], r["failed"], r["success_rate"]) == (0, 3, 0.0)
    assert list(r["errors"].values()) == [3] and "HTTP 500" in next(iter(r["errors"]))
    r = await run_bench(cfg(fake_upstream.base_url, model="cut-stream", shape=Shape(requests=2)))
    assert r["failed"] == 2


async def test_warmup_headers_and_metadata(fake_upstream: FakeUpstream) -> None:
    fake_upstream.reset()
    await run_bench(cfg(fake_upstream.base_url, run_id="w1", warmup=2, shape=Shape(requests=3)))
    stats = fake_upstream.stats()
    assert stats["requests"]["/v1/chat/completions"] == 5
    last = stats["last_by_path"]["/v1/chat/completions"]
    assert last["headers"]["x-modelmeter-tags"] == "bench:w1"
    assert last["body"]["metadata"] == {"bench_run": "w1"}
    assert last["body"]["stream_options"] == {"include_usage": True} and last["body"]["max_tokens"] == 10
    await run_bench(cfg(fake_upstream.base_url, run_id="w2", metadata=False, shape=Shape(requests=1)))
    last = fake_upstream.stats()["last_by_path"]["/v1/chat/completions"]
    assert "metadata" not in last["body"] and last["headers"]["x-modelmeter-tags"] == "bench:w2"


async def test_target_checks(fake_upstream: FakeUpstream) -> None:
    with pytest.raises(BenchError, match="unknown model 'nope'"):
        await run_bench(cfg(fake_upstream.base_url, model="nope"))
    with pytest.raises(BenchError, match="cannot reach"):
        await run_bench(cfg(closed_port_url()))


def test_cli_json_report_and_local_run(fake_upstream: FakeUpstream, tmp_path: Path, bench_home: Path) -> None:
    out = tmp_path / "report.json"
    done = run_cli(
        "bench",
        "--base-url",
        fake_upstream.base_url,
        "--model",
        "fake-model",
        "--requests",
        "20",
        "--concurrency",
        "4",
        "--output-tokens",
        "8",
        "--goodput",
        "ttft:1000,tpot:50",
        "--json",
        str(out),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --quiet
    report = json.loads(out.read_text())
    for key in (
        "run_id",
        "completed",
        "failed",
        "success_rate",
        "request_throughput",
        "output_token_throughput",
        "total_token_throughput",
        "goodput",
    ):
        assert key in report
    for key in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        assert set(report[key]) == {"mean", "p50", "p90", "p95", "p99"}
    assert report["completed"] == 20 and report["total_output_tokens"] == 160
    assert "Request throughput (req/s)" in done.stdout and "TTFT" in done.stdout
    saved = json.loads((bench_home / "runs" / f"{report['run_id']}.json").read_text())
    assert saved["kind"] == "bench" and saved["report"] == report
    assert saved["params"]["concurrency"] == 4 and saved["params"]["goodput_slos_ms"] == {"ttft": 1000.0, "tpot": 50.0}


async def test_dataset_each_line_once_or_cycled(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"prompt": "one two three", "max_tokens": 2}\n'
        '{"messages": [{"role": "user", "content": "four five"}], "max_tokens": 3}\n'
    )
    c = cfg(fake_upstream.base_url, dataset=str(path), output_tokens=None, shape=Shape(requests=None))
    r = await run_bench(c)
    assert r["completed"] == 2 and r["total_output_tokens"] == 5 and c.shape.requests == 2
    r = await run_bench(
        cfg(fake_upstream.base_url, dataset=str(path), output_tokens=None, shape=Shape(requests=5, concurrency=2))
    )
    assert r["completed"] == 5 and r["total_output_tokens"] == 2 + 3 + 2 + 3 + 2
    r = await run_bench(cfg(fake_upstream.base_url, dataset=str(path), output_tokens=4, shape=Shape(requests=2)))
    assert r["total_output_tokens"] == 8  # --output-tokens given: it wins over the lines' own
