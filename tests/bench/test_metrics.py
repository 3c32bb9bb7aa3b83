"""The figures' definitions: numpy-style percentiles, TPOT, ITL, throughputs, goodput."""

from __future__ import annotations

import pytest

from modelmeter.bench.metrics import RequestResult, distribution, error_counts, figures, parse_slos, percentile


def test_percentile_interpolates_linearly_like_numpy() -> None:
    # numpy.percentile(x, q) with its default method="linear"
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(i) for i in range(1, 11)], 90) == pytest.approx(9.1)
    assert percentile([float(i) for i in range(1, 11)], 99) == pytest.approx(9.91)
    assert percentile([5.0], 99) == 5.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_distribution_in_ms_and_empty() -> None:
    d = distribution([0.010, 0.020, 0.030])
    assert d == {"mean": 20.0, "p50": 20.0, "p90": 28.0, "p95": 29.0, "p99": 29.8}
    assert distribution([]) == dict.fromkeys(("mean", "p50", "p90", "p95", "p99"))


def _ok(ttft: float, e2e: float, out: int, itl: list[float] | None = None, prompt: int = 10) -> RequestResult:
    return RequestResult(
        ok=True,
        start=0.0,
        e2e=e2e,
        ttft=ttft,
        itl=itl or [],
        prompt_tokens=prompt,
        completion_tokens=out,
        usage_reported=True,
        status=200,
    )


def test_figures_follow_vllm_definitions() -> None:
    results = [
        _ok(0.05, 0.05 + 9 * 0.01, 10, [0.01] * 9),  # TPOT (E2E - TTFT) / (10 - 1) = 10 ms
        _ok(0.10, 0.10 + 4 * 0.02, 5, [0.02] * 4),  # TPOT 20 ms
        _ok(0.20, 0.20, 1),  # one output token: no TPOT
        RequestResult(ok=False, start=0.0, e2e=0.5, status=500, error="HTTP 500: boom"),
    ]
    f = figures(results, duration=2.0)
    assert (f["completed"], f["failed"], f["success_rate"]) == (3, 1, 0.75)
    assert f["total_input_tokens"] == 30 and f["total_output_tokens"] == 16
    assert f["request_throughput"] == 1.5
    assert f["output_token_throughput"] == 8.0
    assert f["total_token_throughput"] == 23.0
    assert f["tpot_ms"]["mean"] == pytest.approx(15.0)
    assert f["tpot_ms"]["p50"] == pytest.approx(15.0)
    assert f["ttft_ms"]["p50"] == pytest.approx(100.0)
    assert f["itl_ms"]["mean"] == pytest.approx((9 * 10 + 4 * 20) / 13, abs=1e-3)
    assert f["e2e_ms"]["mean"] == pytest.approx((140 + 180 + 200) / 3, abs=1e-3)
    assert "goodput" not in f
    assert error_counts(results) == {"HTTP 500: boom": 1}


def test_goodput_counts_requests_meeting_every_slo() -> None:
    results = [_ok(0.05, 0.14, 10, [0.01] * 9), _ok(0.10, 0.18, 5, [0.02] * 4), _ok(0.60, 0.60, 1)]
    f = figures(results, duration=1.0, slos=parse_slos("ttft:500,tpot:15"))
    # the first meets both; the second misses TPOT (20 ms); the third misses TTFT (600 ms)
    assert f["good_requests"] == 1 and f["goodput"] == 1.0
    assert f["slos_ms"] == {"ttft": 500.0, "tpot": 15.0}
    assert figures(results, 1.0, parse_slos("e2e:200"))["good_requests"] == 2


@pytest.mark.parametrize("text", ["ttft", "ttft:abc", "latency:5", "ttft:-1", "ttft:0"])
def test_bad_slos(text: str) -> None:
    with pytest.raises(ValueError):
        parse_slos(text)
