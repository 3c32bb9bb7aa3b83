"""Usage insight panels under /api/deployments/{name}/usage/…: one endpoint per panel, each the
numbers its chart and its table show (from rollups). Read-only, so plain ``def`` (thread pool)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from modelmeter.api.routes import EndQ, StartQ, TzQ, UsageQ, WindowQ, _csv_cell, _known, _state, _window
from modelmeter.usage import breakdowns, insights, top_breakdowns

router = APIRouter(prefix="/api", tags=["usage insights"])


@router.get("/deployments/{name:path}/usage/distribution", summary="Latency and TTFT distributions of a window")
def usage_distribution(
    request: Request,
    name: str,
    q: UsageQ,
) -> dict[str, Any]:
    """Two histograms: `latency` (every request's duration) and `ttft` (time to first token, for the
    requests that have one). Each has `count`, `p50_ms`, `p95_ms`, `p99_ms` (nearest rank, within
    0.5% of the exact value) and `bars`: `[{low_ms, high_ms, count}]`, logarithmic, about 6.6 per
    decade, only those with requests. A request is in the bar where `low_ms <= value < high_ms`."""
    state = _state(request)
    _known(state, name)
    return insights.distributions(state.db, name, q.span(), q.tag, state.histograms)


@router.get("/deployments/{name:path}/usage/throughput", summary="Output speed per time bucket of a window")
def usage_throughput(
    request: Request,
    name: str,
    q: UsageQ,
) -> dict[str, Any]:
    """The timeseries' buckets (same `bucket_seconds` and alignment), each with `requests`,
    `completion_tokens`, `request_seconds` (the sum of the requests' durations),
    `output_tokens_per_s` = completion_tokens / request_seconds and `ms_per_output_token` =
    1000 × request_seconds / completion_tokens (None without tokens or time)."""
    state = _state(request)
    _known(state, name)
    return insights.throughput(state.db, name, q.span(chart=True), q.tag)


@router.get("/deployments/{name:path}/usage/errors", summary="Failed requests by type per time bucket of a window")
def usage_errors(
    request: Request,
    name: str,
    q: UsageQ,
) -> dict[str, Any]:
    """The timeseries' buckets, each with `requests`, `errors` and the failed requests by type
    (they add up to `errors`), from the HTTP status the client got: `rate_limited` (429), `hangup`
    (499: the client went away), `timeout` (408, 504), `client` (other 4xx, the gateway's own
    rejections among them), `upstream` (other 5xx), `other` (e.g. a stream that broke after its
    200); `totals` by type for the window (its buckets aligned to the clock, as the charts')."""
    state = _state(request)
    _known(state, name)
    return insights.errors(state.db, name, q.span(chart=True), q.tag)


By = Literal["call_type", "key", "user", "tag", "session"]
Sort = Literal["spend", "requests", "tokens", "error_rate", "p95"]


@router.get(
    "/deployments/{name:path}/usage/breakdown",
    summary="A window's requests by call type, API key, end user, tag or session",
)
def usage_breakdown(
    request: Request,
    name: str,
    by: Annotated[By, Query(description="the dimension: call_type, key, user, tag or session")] = "call_type",
    sort: Annotated[Sort, Query(description="key, user, tag, session: which values come first")] = "spend",
    limit: Annotated[int, Query(ge=1, le=top_breakdowns.MAX_LIMIT, description="key, user, tag, session: rows")] = 50,
    format: Literal["json", "csv"] = "json",
    window: WindowQ = None,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
) -> Any:
    """One row per value with requests: `requests`, `failed`, `error_rate`, `prompt_tokens`,
    `completion_tokens`, `total_tokens`, `spend` (USD); `total` is the sum of the rows (and of
    `others`). `format=csv` gives the rows (and `others`) as CSV.

    `by=call_type` (e.g. chat, messages, embeddings): every value, exact, for exactly the window,
    by spend then requests; `total` equals the window's cards.

    `by=key` (the virtual key's alias, never the key), `user` (the request's `user` field), `tag`
    (a request with several tags counts under each) and `session` (the agent session): from hourly
    rollups that keep each hour's top 50 values by requests and top 50 by spend, and an "others" remainder, so
    they cover the whole UTC hours the window touches (`start`, `end` say which), and stay fast with
    any number of distinct values. The `limit` values first by `sort` (`spend`, `requests`,
    `tokens`, `error_rate`, `p95`) are `rows`, each with `p95_ms` (latency, within 2.6%); `others`
    holds every other request (the values past the limit, and each hour's values outside its
    lists), with `values` (how many values past the limit it holds); rows plus `others` equal `total`
    exactly, which (but for tags) equals those hours' cards. A value's row counts its requests in
    the hours it was listed, from the batch that listed it: never more than its true figures, and
    exact for a value listed from its first request of each hour (the busiest values are)."""
    state = _state(request)
    _known(state, name)
    win = _window(window, start, end, tz)
    if by == "call_type":
        result = breakdowns.breakdown(state.db, name, win, by)
        columns: tuple[str, ...] = breakdowns.CSV_COLUMNS
    else:
        result = top_breakdowns.breakdown(state.db, name, win, by, sort=sort, limit=limit, cache=state.top_values)
        columns = top_breakdowns.CSV_COLUMNS
    if format == "json":
        return result
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns if by == "call_type" else ("others", *columns))
    for row in result["rows"]:
        cells = [_csv_cell(row[c]) for c in columns]
        writer.writerow(cells if by == "call_type" else ["", *cells])
    if result.get("others"):
        writer.writerow(["yes", *(_csv_cell(result["others"][c]) for c in columns)])
    filename = f"{name.replace('/', '_')}-by-{by}.csv"
    return Response(
        buf.getvalue(), media_type="text/csv", headers={"content-disposition": f'attachment; filename="{filename}"'}
    )
