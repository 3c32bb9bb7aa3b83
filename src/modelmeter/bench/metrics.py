"""What one benchmark request measured, and the run's figures, defined as vLLM's ``bench serve``.

* TTFT: from sending the request to the first streamed chunk with content (a non-streamed request
  has no first token apart from its whole answer: its TTFT is its end-to-end latency).
* ITL: the gaps between consecutive content chunks, over every request, flattened.
* TPOT: (E2E − TTFT) / (output tokens − 1) per request with more than one output token, the output
  tokens being those the server reports in ``usage``.
* E2E: from sending the request to the end of its response.
* Percentiles: linear interpolation between the closest ranks (``numpy.percentile``'s default).
* Throughputs divide by the run's duration (first request sent → last response done).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50, 90, 95, 99)
SLO_KEYS = {"ttft": "ttft", "tpot": "tpot", "e2e": "e2e", "e2el": "e2e"}


@dataclass(slots=True)
class RequestResult:
    ok: bool
    start: float  # perf_counter when the request was sent
    e2e: float = 0.0  # seconds
    ttft: float | None = None  # seconds
    itl: list[float] = field(default_factory=list)  # seconds
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_reported: bool = False
    status: int = 0  # HTTP status; 0 when no response came
    error: str | None = None
    response_id: str | None = None
    text: str | None = None  # the answer, kept only when asked (evaluation)
    index: int = 0  # which request of the run

    @property
    def tpot(self) -> float | None:
        if self.ttft is None or self.completion_tokens <= 1:
            return None
        return (self.e2e - self.ttft) / (self.completion_tokens - 1)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted values, interpolated linearly as numpy does."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def distribution(values: Iterable[float], scale: float = 1000.0) -> dict[str, float | None]:
    """``mean`` and p50/p90/p95/p99 of ``values`` times ``scale`` (seconds to ms by default);
    every figure is None when there are no values."""
    data = sorted(v * scale for v in values)
    out: dict[str, float | None] = {"mean": _r(sum(data) / len(data)) if data else None}
    for q in PERCENTILES:
        out[f"p{q}"] = _r(percentile(data, q)) if data else None
    return out


def histogram(values: Iterable[float], bins: int = 24, scale: float = 1000.0) -> dict[str, list[float]]:
    """Equal-width bins of ``values`` times ``scale`` (ms): ``{"edges": [bins+1], "counts": [bins]}``,
    small enough to store with a report (the page draws the distribution, not only percentiles)."""
    data = [v * scale for v in values]
    if not data:
        return {"edges": [], "counts": []}
    lo, hi = min(data), max(data)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in data:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return {"edges": [_r(lo + i * width) for i in range(bins + 1)], "counts": [float(c) for c in counts]}


def _r(value: float) -> float:
    return round(value, 3)


def parse_slos(text: str | None) -> dict[str, float]:
    """``ttft:500,tpot:50`` → {"ttft": 500.0, "tpot": 50.0} (milliseconds); ValueError if bad."""
    if not text:
        return {}
    slos: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition(":")
        key = SLO_KEYS.get(name.strip().lower())
        if not sep or key is None:
            raise ValueError(f"bad SLO {part.strip()!r}: use NAME:MS with NAME one of ttft, tpot, e2e")
        try:
            ms = float(value)
        except ValueError:
            raise ValueError(f"bad SLO {part.strip()!r}: {value!r} is not a number of ms") from None
        if not ms > 0:
            raise ValueError(f"bad SLO {part.strip()!r}: the limit must be positive")
        slos[key] = ms
    return slos


def _meets(r: RequestResult, slos: Mapping[str, float]) -> bool:
    """vLLM's rule: a request with at most one output token counts as TPOT 0."""
    values = {"ttft": r.ttft if r.ttft is not None else r.e2e, "tpot": r.tpot or 0.0, "e2e": r.e2e}
    return all(values[k] * 1000.0 <= limit for k, limit in slos.items())


def figures(
    results: Sequence[RequestResult], duration: float, slos: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """The report's numbers from the measured requests (warm-ups excluded by the caller)."""
    ok = [r for r in results if r.ok]
    failed = len(results) - len(ok)
    prompt = sum(r.prompt_tokens for r in ok)
    output = sum(r.completion_tokens for r in ok)
    dur = duration if duration > 0 else float("nan")
    report: dict[str, Any] = {
        "completed": len(ok),
        "failed": failed,
        "success_rate": round(len(ok) / len(results), 6) if results else None,
        "duration_s": round(duration, 6),
        "total_input_tokens": prompt,
        "total_output_tokens": output,
        "request_throughput": _rate(len(ok), dur),
        "output_token_throughput": _rate(output, dur),
        "total_token_throughput": _rate(prompt + output, dur),
        "ttft_ms": distribution(r.ttft for r in ok if r.ttft is not None),
        "itl_ms": distribution(gap for r in ok for gap in r.itl),
        "tpot_ms": distribution(t for r in ok if (t := r.tpot) is not None),
        "e2e_ms": distribution(r.e2e for r in ok),
        "histograms_ms": {
            "ttft": histogram(r.ttft for r in ok if r.ttft is not None),
            "e2e": histogram(r.e2e for r in ok),
        },
    }
    if slos:
        good = sum(1 for r in ok if _meets(r, slos))
        report["goodput"] = _rate(good, dur)
        report["good_requests"] = good
        report["slos_ms"] = dict(slos)
    return report


def _rate(count: float, duration: float) -> float | None:
    value = count / duration
    return None if math.isnan(value) else round(value, 6)


def error_counts(results: Iterable[RequestResult], top: int = 5) -> dict[str, int]:
    """The most frequent failure messages, most frequent first."""
    counts: dict[str, int] = {}
    for r in results:
        if not r.ok:
            key = (r.error or "failed")[:200]
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:top])
