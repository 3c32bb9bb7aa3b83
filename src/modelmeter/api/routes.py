"""The JSON API under /api: deployments, usage summaries, the request log, one record, live events.

Handlers that only read the database are plain ``def``: FastAPI runs them in its thread pool, so a
query never blocks the event loop that relays /v1 traffic.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from modelmeter.api.errors import api_error
from modelmeter.api.state import AppState
from modelmeter.config import ConfigError
from modelmeter.usage import records as records_q
from modelmeter.usage import summary as summary_q
from modelmeter.usage.upstreams import split as upstream_split
from modelmeter.usage.window import Window, WindowError, parse_window

WindowQ = Annotated[Literal["1h", "24h", "7d", "30d"] | None, Query(description="Named window; or give start and end")]
StartQ = Annotated[str | None, Query(description="ISO-8601 start (inclusive)")]
EndQ = Annotated[str | None, Query(description="ISO-8601 end (exclusive)")]
TzQ = Annotated[str | None, Query(description="IANA time zone for bucket alignment, e.g. Europe/Paris")]
TagQ = Annotated[str | None, Query(description="Only requests carrying this tag, e.g. bench:RUN")]
StatusQ = Annotated[Literal["success", "error"] | None, Query()]
KeyQ = Annotated[str | None, Query(description="Only requests made with this virtual key (its alias)")]
SessionQ = Annotated[str | None, Query(max_length=512, description="Only calls of this agent session (session_id)")]
UserQ = Annotated[
    str | None, Query(max_length=512, description="Only requests whose body named this end user (its `user` field)")
]
CallTypeQ = Annotated[str | None, Query(max_length=64, description="Only calls of this type, e.g. chat, messages")]
CSV_COLUMNS = (
    "start_time",
    "status",
    "http_status",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "ttft_ms",
    "spend",
    "request_id",
    "id",
    "model",
    "model_id",
    "provider",
    "call_type",
    "error",
    "stream",
    "cached_tokens",
    "reasoning_tokens",
    "retries",
    "cache_hit",
    "overhead_ms",
    "client_ip",
)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.mm
    return state


def _window(window: str | None, start: str | None, end: str | None, tz: str | None, chart: bool = False) -> Window:
    try:
        win = parse_window(window, start, end, tz)
        if chart:
            win.check_buckets()
        return win
    except WindowError as exc:
        raise api_error(400, str(exc), exc.param) from None


@dataclass(frozen=True)
class UsageArgs:
    """The query the summary, the timeseries and every usage panel take: a window (named, or start
    and end), the viewer's time zone, a tag."""

    window: str | None
    start: str | None
    end: str | None
    tz: str | None
    tag: str | None

    def span(self, chart: bool = False) -> Window:
        """The window (400 if it is malformed; with ``chart``, also if it has too many buckets)."""
        return _window(self.window, self.start, self.end, self.tz, chart)


def _usage_args(
    window: WindowQ = None, start: StartQ = None, end: EndQ = None, tz: TzQ = None, tag: TagQ = None
) -> UsageArgs:
    return UsageArgs(window, start, end, tz, tag)


UsageQ = Annotated[UsageArgs, Depends(_usage_args)]


def _known(state: AppState, name: str) -> None:
    # Memory only: the registry reloads every second in the background (deployments other
    # processes added at run time).
    if state.registry.get(name) is None:
        raise api_error(404, f"no deployment named {name!r}", "name", "deployment_not_found")


router = APIRouter(prefix="/api", tags=["usage"])


@router.get("/deployments", summary="List deployments with their last-24-hours figures")
async def list_deployments(request: Request) -> dict[str, Any]:
    state = _state(request)
    await asyncio.to_thread(state.registry.refresh)  # the newest list, off the event loop
    deps = state.registry.all()
    stats, reachable = await asyncio.gather(
        asyncio.to_thread(summary_q.last_day_by_deployment, state.db),
        asyncio.gather(*(state.probe.reachable(d) for d in deps)),
    )
    data = []
    for dep, ok in zip(deps, reachable, strict=True):
        item = dep.public()
        item["reachable"] = ok
        item["last_24h"] = stats.get(dep.name, summary_q.empty_day())
        if dep.upstreams:  # each upstream's state, in-flight calls and last error (this process's)
            item["upstream_health"] = state.router.pool(dep).health()
        data.append(item)
    return {"data": data}


@router.post("/deployments", status_code=201, summary="Add a deployment at run time")
async def add_deployment(request: Request, definition: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    state = _state(request)
    try:
        dep = await asyncio.to_thread(state.registry.add, definition)
    except ConfigError as exc:
        status = 409 if "already exists" in str(exc) else 400
        raise api_error(status, str(exc), None, "deployment_conflict" if status == 409 else None) from None
    if dep.is_local:
        await state.ensure_local(dep)
    return dep.public()


@router.get("/deployments/{name:path}/usage/timeseries", summary="Buckets of a window, for charts")
def usage_timeseries(
    request: Request,
    name: str,
    q: UsageQ,
) -> dict[str, Any]:
    state = _state(request)
    _known(state, name)
    return summary_q.timeseries(state.db, name, q.span(chart=True), q.tag, state.percentiles)


@router.get(
    "/deployments/{name:path}/usage",
    summary="The summary cards of a window, with the previous window of the same length and each card's change",
)
def usage(
    request: Request,
    name: str,
    q: UsageQ,
) -> dict[str, Any]:
    """The four cards' figures (requests, tokens, spend, latency), plus `previous`: the same figures
    for the window of the same length just before, and `change`: each card's relative change
    (`requests`, `total_tokens`, `spend`, `avg_latency_ms`; 0.25 is +25%; null when the previous
    figure is 0 or missing)."""
    state = _state(request)
    _known(state, name)
    win = q.span()
    result = summary_q.summary_with_previous(state.db, name, win, q.tag, state.histograms)
    dep = state.registry.get(name)
    if dep is not None and dep.upstreams:  # the split by upstream that answered (routing/)
        result["upstreams"] = upstream_split(state.db, name, win, q.tag)
    return result


@router.get("/deployments/{name:path}/requests/export", summary="The filtered log as CSV or JSONL")
def export_requests(
    request: Request,
    name: str,
    format: Literal["csv", "jsonl"] = "csv",
    window: WindowQ = None,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
    status: StatusQ = None,
    tag: TagQ = None,
    key_alias: KeyQ = None,
    session: SessionQ = None,
    call_type: CallTypeQ = None,
    user: UserQ = None,
) -> StreamingResponse:
    state = _state(request)
    _known(state, name)
    rows = records_q.export(
        state.db,
        name,
        _window(window, start, end, tz),
        status=status,
        tag=tag,
        key_alias=key_alias,
        session=session,
        call_type=call_type,
        end_user=user,
    )
    filename = f"{name.replace('/', '_')}-requests.{format}"
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    body = _csv_lines(rows) if format == "csv" else (orjson.dumps(r) + b"\n" for r in rows)
    return StreamingResponse(
        body, media_type=media, headers={"content-disposition": f'attachment; filename="{filename}"'}
    )


def _csv_cell(value: Any) -> Any:
    # A text cell a spreadsheet would run as a formula (client-controlled: errors, ids) is kept text.
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return "" if value is None else value


def _csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for i, row in enumerate(rows):
        writer.writerow([_csv_cell(row.get(c)) for c in CSV_COLUMNS])
        if i % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


@router.get("/deployments/{name:path}/requests", summary="The request log, newest first (keyset pages)")
def list_requests(
    request: Request,
    name: str,
    window: WindowQ = None,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
    limit: Annotated[int, Query(ge=1, le=records_q.MAX_LIMIT)] = 50,
    cursor: str | None = None,
    status: StatusQ = None,
    tag: TagQ = None,
    request_id: Annotated[str | None, Query(description="Find by request ID or record id")] = None,
    after: Annotated[str | None, Query(description="Only rows newer than this cursor")] = None,
    key_alias: KeyQ = None,
    session: SessionQ = None,
    call_type: CallTypeQ = None,
    user: UserQ = None,
) -> dict[str, Any]:
    state = _state(request)
    _known(state, name)
    win = _window(window, start, end, tz)
    filters = {
        "status": status,
        "tag": tag,
        "key_alias": key_alias,
        "session": session,
        "call_type": call_type,
        "end_user": user,
    }
    try:
        if after:
            rows = records_q.newer(state.db, name, win, after, limit=limit, **filters)
            newest = rows[0] if rows else None
            return {
                "data": rows,
                "next_cursor": None,
                "newest_cursor": records_q.cursor_of(newest) if newest else after,
            }
        result = records_q.page(
            state.db,
            name,
            win,
            limit=limit,
            cursor=cursor,
            search=request_id,
            **filters,
        )
        if not cursor:  # the first page: where Live continues from (after=), even if it is empty
            first = result["data"][0] if result["data"] else None
            result["newest_cursor"] = records_q.cursor_of(first) if first else records_q.encode_cursor(win.start_us, "")
        return result
    except records_q.CursorError as exc:
        raise api_error(400, str(exc), "cursor") from None


@router.get("/deployments/{name:path}/events", summary="Live: records of this deployment as they are stored (SSE)")
async def live_events(request: Request, name: str) -> StreamingResponse:
    state = _state(request)
    _known(state, name)
    queue = state.live.subscribe(name)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b": live\n\n"
            while True:
                try:
                    row = await asyncio.wait_for(queue.get(), timeout=15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield b"data: " + orjson.dumps(row) + b"\n\n"
        finally:
            state.live.unsubscribe(queue)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
    )


@router.get("/deployments/{name:path}", summary="One deployment")
async def get_deployment(request: Request, name: str) -> dict[str, Any]:
    state = _state(request)
    _known(state, name)
    dep = state.registry.get(name)
    assert dep is not None
    item = dep.public()
    item["reachable"] = await state.probe.reachable(dep)
    if dep.upstreams:
        item["upstream_health"] = state.router.pool(dep).health()
    return item


@router.delete("/deployments/{name:path}", status_code=204, summary="Remove a run-time deployment")
def delete_deployment(request: Request, name: str) -> Response:
    state = _state(request)
    try:
        removed = state.registry.remove(name)  # also a stored one no longer valid (not served)
    except ConfigError as exc:
        raise api_error(409, str(exc), "name", "deployment_in_config") from None
    if not removed:
        raise api_error(404, f"no deployment named {name!r}", "name", "deployment_not_found")
    return Response(status_code=204)


@router.get("/requests/{rid}", summary="One whole record, with its request and response")
def get_request(request: Request, rid: str) -> dict[str, Any]:
    record = records_q.one(_state(request).db, rid)
    if record is None:
        raise api_error(404, f"no request with id {rid!r}", "id", "request_not_found")
    return record
