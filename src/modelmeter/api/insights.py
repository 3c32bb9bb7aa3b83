"""Usage insight panels under /api/deployments/{name}/usage/…: one endpoint per panel, each the
numbers its chart and its table show (from rollups). Read-only, so plain ``def`` (thread pool)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from modelmeter.api.routes import EndQ, StartQ, TagQ, TzQ, WindowQ, _csv_cell, _known, _state, _window
from modelmeter.usage import breakdowns, insights

router = APIRouter(prefix="/api", tags=["usage insights"])


@router.get("/deployments/{name:path}/usage/distribution", summary="Latency and TTFT distributions of a window")
def usage_distribution(
    request: Request,
    name: str,
    window: WindowQ = None,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
    tag: TagQ = None,
) -> dict[str, Any]:
    """Two histograms: `latency` (every request's duration) and `ttft` (time to first token, for the
    requests that have one). Each has `count`, `p50_ms`, `p95_ms`, `p99_ms` (nearest rank, within
    0.5% of the exact value) and `bars`: `[{low_ms, high_ms, count}]`, logarithmic, about 6.6 per
    decade, only those with requests. A request is in the bar where `low_ms <= value < high_ms`."""
    state = _state(request)
    _known(state, name)
    return insights.distributions(state.db, name, _window(window, start, end, tz), tag, state.histograms)


@router.get("/deployments/{name:path}/usage/throughput", summary="Output speed per time bucket of a window")
def usage_throughput(
    request: Request,
    name: str,
    window: WindowQ = None,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
    tag: TagQ = None,
) -> dict[str, Any]:
    """The timeseries' buckets (same `bucket_seconds` and alignment), each with `requests`,
    `completion_tokens`, `request_seconds` (the sum of the requests' durations),
    `output_tokens_per_s` = completion_tokens / request_seconds and `ms_per_output_token` =
    1000 × request_seconds / completion_tokens (None without tokens or time)."""
    state = _state(request)
    _known(state, name)
    return insights.throughput(state.db, name, _window(window, start, end, tz, chart=True), tag)


@router.get("/deployments/{name:path}/usage/errors", summary="Failed requests by type per time bucket of a window")
def usage_errors(
    request: Request,
    name: str,
    window: WindowQ = None,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
    tag: TagQ = None,
) -> dict[str, Any]:
    """The timeseries' buckets, each with `requests`, `errors` and the failed requests by type
    (they add up to `errors`), from the HTTP status the client got: `rate_limited` (429), `hangup`
    (499: the client went away), `timeout` (408, 504), `client` (other 4xx, the gateway's own
    rejections among them), `upstream` (other 5xx), `other` (e.g. a stream that broke after its
    200); `totals` by type for the window (its buckets aligned to the clock, as the charts')."""
    state = _state(request)
    _known(state, name)
    return insights.errors(state.db, name, _window(window, start, end, tz, chart=True), tag)


@router.get("/deployments/{name:path}/usage/breakdown", summary="A window's requests by call type")
def usage_breakdown(
    request: Request,
    name: str,
    by: Annotated[Literal["call_type"], Query(description="the dimension: call_type")] = "call_type",
    format: Literal["json", "csv"] = "json",
    window: WindowQ = None,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
) -> Any:
    """One row per call type (e.g. chat, messages, embeddings) with requests in the window:
    `requests`, `failed`, `error_rate`, `prompt_tokens`, `completion_tokens`, `total_tokens`,
    `spend` (USD), by spend then requests; `total` is their sum, which equals the
    window's cards. `format=csv` gives the same rows as CSV."""
    state = _state(request)
    _known(state, name)
    result = breakdowns.breakdown(state.db, name, _window(window, start, end, tz), by)
    if format == "json":
        return result
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(breakdowns.CSV_COLUMNS)
    for row in result["rows"]:
        writer.writerow([_csv_cell(row[c]) for c in breakdowns.CSV_COLUMNS])
    filename = f"{name.replace('/', '_')}-by-{by}.csv"
    return Response(
        buf.getvalue(), media_type="text/csv", headers={"content-disposition": f'attachment; filename="{filename}"'}
    )
