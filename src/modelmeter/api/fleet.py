"""The fleet usage API: every deployment's figures for one window in one call (the Models page)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from modelmeter.api.routes import EndQ, StartQ, TzQ, WindowQ, _state, _window
from modelmeter.usage import fleet as fleet_q

router = APIRouter(prefix="/api", tags=["usage"])


@router.get("/fleet/usage", summary="Every deployment's usage for a window, and their totals")
def fleet_usage(
    request: Request,
    window: WindowQ = None,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
) -> dict[str, Any]:
    """One call for the Models page, from the rollups (never a scan of the log).

    `totals`: the window's `requests`, `succeeded`, `failed`, `error_rate` (failed / requests; null
    without requests), `prompt_tokens`, `completion_tokens`, `total_tokens`, `spend` (USD) and
    `avg_latency_ms` across every deployment served; they equal the sums of `deployments` exactly
    (money is summed in integer picodollars). `previous`: the same for the window of the same
    length just before, and `change`: the relative change of `requests`, `total_tokens`, `spend`
    and `error_rate` (0.25 is +25%; null when the previous figure is 0 or missing).

    `deployments`: one entry per deployment (those without requests too) with the same figures as
    its `/usage` cards, `spend_share` (its part of the window's spend, 0–1; null when nothing was
    spent) and `series`: `requests`, `errors` and `spend` per chart bucket, for sparklines. The
    buckets are the timeseries' (`bucket_seconds`, aligned to `tz`'s clock; `buckets` gives each
    one's start, so the first may start before `start`)."""
    state = _state(request)
    state.registry.refresh()  # the deployments other processes added at run time, as the list has them
    names = [dep.name for dep in state.registry.all()]
    return fleet_q.fleet(state.db, names, _window(window, start, end, tz, chart=True))
