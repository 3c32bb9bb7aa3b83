"""The rollup sums of the cost, cache and retries panels (0018), from a record row.

A row's ``cost_breakdown`` (JSON: ``[{component, tokens, usd_per_million, cost}]``, costs and rates
as floats of exact Decimals) gives the spend per component and what caching saved. Every figure is
a whole number of pico-dollars rounded the same way here, in the 0018 backfill and in the tests
(``int(x + 0.5)`` of a non-negative float), so a bucket adds up to the sum of its rows exactly:

* ``cost_<component>_pusd``: the component's cost (``cache_write_1h`` counts as cache_write).
* ``cache_write_tokens``: input tokens written to the provider's cache, by calls the upstream
  answered (a response-cache hit repeats the usage of the call it copies: nothing was sent).
* ``cache_hit_prompt_tokens`` / ``cache_hit_cached_tokens``: those hits' input and cached tokens, so
  the provider-cached share can leave them out.
* ``cached_saved_pusd``: provider prompt caching, for calls the upstream answered: what the cached
  input tokens would have cost at the call's input rate minus what they did cost (cached tokens x
  (input rate - cached rate), at the rates the call was priced at, tiers and overrides included).
* ``cache_hit_saved_pusd``: our response cache: a hit's breakdown keeps its tokens and rates at
  cost 0, so what it saved is what it would have cost (sum of tokens x rate over its components).
* ``retried`` / ``rescued``: requests retried at least once / those that then succeeded;
  ``retry_attempts``: the retries themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import orjson

# Component of the breakdown -> its rollup column.
COMPONENT_COLUMNS = {
    "input": "cost_input_pusd",
    "cached_input": "cost_cached_pusd",
    "cache_write": "cost_cache_write_pusd",
    "cache_write_1h": "cost_cache_write_pusd",
    "output": "cost_output_pusd",
    "reasoning": "cost_reasoning_pusd",
}
COST_COLUMNS = tuple(dict.fromkeys(COMPONENT_COLUMNS.values()))
COLUMNS = (
    *COST_COLUMNS,
    "cache_write_tokens",
    "cached_saved_pusd",
    "cache_hits",
    "cache_hit_saved_pusd",
    "cache_hit_prompt_tokens",
    "cache_hit_cached_tokens",
    "retried",
    "rescued",
    "retry_attempts",
)
# What a row needs beyond the base sums (which have prompt_tokens and cached_tokens).
ROW_COLUMNS = ("retries", "cache_hit", "cost_breakdown")
_CACHE_WRITES = ("cache_write", "cache_write_1h")
_PICO = 1e12


def pusd(usd: float) -> int:
    return int(usd * _PICO + 0.5)


def priced_pusd(tokens: int, usd_per_million: float) -> int:
    """tokens x rate in pico-dollars: USD per million tokens x 1e6 = pico-dollars per token."""
    return int(tokens * usd_per_million * 1e6 + 0.5)


def add(sums: dict[str, Any], r: Mapping[str, Any]) -> None:
    """Add one record row's panel figures to a bucket's sums."""
    _add_retries(sums, r)
    _add_cost(sums, r)


def add_many(sums: dict[str, Any], rows: Sequence[Mapping[str, Any]]) -> None:
    """``add`` of each row, the retries looked for in C first (few calls are retried)."""
    if any(map(_RETRIES, rows)):
        for r in rows:
            _add_retries(sums, r)
    for r in rows:
        _add_cost(sums, r)


_RETRIES = itemgetter("retries")


def _add_retries(sums: dict[str, Any], r: Mapping[str, Any]) -> None:
    retries = r["retries"] or 0
    if retries > 0:
        sums["retried"] += 1
        sums["retry_attempts"] += retries
        if r["status"] == "success":
            sums["rescued"] += 1


def _add_cost(sums: dict[str, Any], r: Mapping[str, Any]) -> None:
    text = r["cost_breakdown"]
    lines = orjson.loads(text) if text and text != "[]" else ()
    hit = r["cache_hit"]
    if hit:
        sums["cache_hits"] += 1
        sums["cache_hit_prompt_tokens"] += r["prompt_tokens"]
        sums["cache_hit_cached_tokens"] += r["cached_tokens"]
        sums["cache_hit_saved_pusd"] += sum(priced_pusd(x["tokens"], x["usd_per_million"]) for x in lines)
    input_rate = cached = None
    for x in lines:
        component = x["component"]
        col = COMPONENT_COLUMNS.get(component)
        if col is None:
            continue
        cost = pusd(x["cost"])
        sums[col] += cost
        if component == "input":
            input_rate = x["usd_per_million"]
        elif component == "cached_input":
            cached = (x["tokens"], cost)
        elif component in _CACHE_WRITES and not hit:
            sums["cache_write_tokens"] += x["tokens"]
    if cached is not None and input_rate is not None and not hit:
        sums["cached_saved_pusd"] += priced_pusd(cached[0], input_rate) - cached[1]
