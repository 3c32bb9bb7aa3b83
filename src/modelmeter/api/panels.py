"""The cost, cache, retries and reasoning panels under /api/deployments/{name}/usage/…: one
endpoint per panel, each the numbers its chart and its table show (from rollups). Each answers the
timeseries' buckets (same `bucket_seconds` and alignment to the viewer's clock) and `totals`, the
same figures for the sum of the buckets. Read-only, so plain ``def`` (thread pool)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from modelmeter.api.routes import UsageArgs, UsageQ, _known, _state
from modelmeter.usage import panels

router = APIRouter(prefix="/api", tags=["usage insights"])


def _panel(request: Request, name: str, which: str, q: UsageArgs) -> dict[str, Any]:
    state = _state(request)
    _known(state, name)
    return panels.panel(state.db, name, q.span(chart=True), which, q.tag)


@router.get("/deployments/{name:path}/usage/costs", summary="Spend by cost component per time bucket")
def usage_costs(
    request: Request,
    name: str,
    q: UsageQ,
) -> dict[str, Any]:
    """Each bucket's `requests`, `spend` (USD) and the spend of each cost component (USD, listed in
    `components`; they add up to `spend`): `input` (uncached input tokens), `cached_input`
    (provider-cached input tokens, at the cached rate), `cache_write` (input tokens written to the
    provider's cache, 5-minute and 1-hour writes), `output` (output tokens, reasoning included when
    the model has no reasoning price) and `reasoning` (reasoning tokens priced on their own). Each
    is the sum of the records' cost breakdowns, to the pico-dollar."""
    return _panel(request, name, "costs", q)


@router.get("/deployments/{name:path}/usage/cache", summary="Provider caching and response-cache hits per time bucket")
def usage_cache(
    request: Request,
    name: str,
    q: UsageQ,
) -> dict[str, Any]:
    """Two caches. The provider's prompt cache, over the calls sent upstream (a response-cache hit
    repeats the usage of the call it copies, so it is left out): `prompt_tokens` (their input
    tokens), `cached_tokens` (those the provider read from its cache), `cached_share` =
    cached_tokens / prompt_tokens, `cache_write_tokens` (input tokens written to it) and
    `cached_saved` (USD) = for each call, what its cached tokens would have cost at the call's
    input rate minus what they cost at its cached rate, i.e. cached tokens × (input rate − cached
    rate) at the rates the call was priced at (tiers and price overrides included; cache writes,
    which cost more than input, are not netted here: their spend is `cache_write` in
    …/usage/costs). Our response cache: `cache_hits` (requests answered from it, never sent
    upstream), `cache_hit_share` = cache_hits / requests, and `cache_hit_saved` (USD) = what those
    requests would have cost, each at its own tokens and rates. `saved` = cached_saved +
    cache_hit_saved. Shares are None without a denominator. Amounts are rounded to the
    pico-dollar per request, then summed."""
    return _panel(request, name, "cache", q)


@router.get("/deployments/{name:path}/usage/retries", summary="Retried requests and those retries rescued")
def usage_retries(
    request: Request,
    name: str,
    q: UsageQ,
) -> dict[str, Any]:
    """Each bucket's `requests`, `retried` (requests the gateway sent upstream more than once: after
    a connect error, a 429 or a 5xx, or to the next upstream of a routed deployment), `rescued`
    (retried requests that then succeeded), `failed_after_retries` = retried − rescued,
    `retry_attempts` (the extra attempts), `retried_share` = retried / requests and
    `rescued_share` = rescued / retried (None without a denominator)."""
    return _panel(request, name, "retries", q)


@router.get("/deployments/{name:path}/usage/reasoning", summary="Reasoning tokens' share of output per time bucket")
def usage_reasoning(
    request: Request,
    name: str,
    q: UsageQ,
) -> dict[str, Any]:
    """Each bucket's `requests`, `completion_tokens` (all output tokens, reasoning included, as the
    upstream reported them), `reasoning_tokens` and `reasoning_share` = reasoning_tokens /
    completion_tokens (None without output)."""
    return _panel(request, name, "reasoning", q)
