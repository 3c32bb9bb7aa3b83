"""The cost, cache, retries and reasoning panels of the Usage tab, from rollups (a tag's rows for a
tag): per chart bucket and summed over the buckets, each figure a sum of the records' own numbers
(``storage/panel_sums.py`` says how each is derived from a record)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modelmeter.storage.database import Database
from modelmeter.units import iso
from modelmeter.usage.insights import chart_sums
from modelmeter.usage.window import Window

PICO = 1e12
# Cost components as the API names them -> their rollup sum (cache_write includes 1-hour writes).
COMPONENTS = {
    "input": "cost_input_pusd",
    "cached_input": "cost_cached_pusd",
    "cache_write": "cost_cache_write_pusd",
    "output": "cost_output_pusd",
    "reasoning": "cost_reasoning_pusd",
}

Sums = Mapping[str, float]


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _usd(pusd: float) -> float:
    return int(pusd) / PICO


def _costs(s: Sums) -> dict[str, Any]:
    return {
        "requests": int(s["requests"]),
        "spend": _usd(s["spend_pusd"]),
        **{name: _usd(s[col]) for name, col in COMPONENTS.items()},
    }


def _cache(s: Sums) -> dict[str, Any]:
    # Provider caching counts the input sent upstream: response-cache hits repeat another call's usage.
    prompt = int(s["prompt_tokens"] - s["cache_hit_prompt_tokens"])
    cached = int(s["cached_tokens"] - s["cache_hit_cached_tokens"])
    return {
        "requests": int(s["requests"]),
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "cached_share": _share(cached, prompt),
        "cache_write_tokens": int(s["cache_write_tokens"]),
        "cached_saved": _usd(s["cached_saved_pusd"]),
        "cache_hits": int(s["cache_hits"]),
        "cache_hit_share": _share(s["cache_hits"], s["requests"]),
        "cache_hit_saved": _usd(s["cache_hit_saved_pusd"]),
        "saved": _usd(s["cached_saved_pusd"] + s["cache_hit_saved_pusd"]),
    }


def _retries(s: Sums) -> dict[str, Any]:
    retried, rescued = int(s["retried"]), int(s["rescued"])
    return {
        "requests": int(s["requests"]),
        "retried": retried,
        "rescued": rescued,
        "failed_after_retries": retried - rescued,
        "retry_attempts": int(s["retry_attempts"]),
        "retried_share": _share(retried, s["requests"]),
        "rescued_share": _share(rescued, retried),
    }


def _reasoning(s: Sums) -> dict[str, Any]:
    return {
        "requests": int(s["requests"]),
        "completion_tokens": int(s["completion_tokens"]),
        "reasoning_tokens": int(s["reasoning_tokens"]),
        "reasoning_share": _share(s["reasoning_tokens"], s["completion_tokens"]),
    }


_FIGURES: dict[str, Callable[[Sums], dict[str, Any]]] = {
    "costs": _costs,
    "cache": _cache,
    "retries": _retries,
    "reasoning": _reasoning,
}


def panel(db: Database, deployment: str, window: Window, which: str, tag: str | None = None) -> dict[str, Any]:
    """One panel (``costs``, ``cache``, ``retries`` or ``reasoning``): its figures per chart bucket
    and ``totals``, the same figures of the buckets' sums (shares of sums, never means of shares)."""
    figures = _FIGURES[which]
    size, origin, count, sums = chart_sums(db, deployment, window, tag)
    size_us = size * 1_000_000
    total: dict[str, float] = {}
    buckets = []
    for k in range(count):
        s = sums.get(k)
        if s is None:
            buckets.append({"start": iso(origin + k * size_us), **figures(_ZERO)})
            continue
        for col, value in s.items():
            total[col] = total.get(col, 0) + value
        buckets.append({"start": iso(origin + k * size_us), **figures(s)})
    out: dict[str, Any] = {
        "deployment": deployment,
        "bucket_seconds": size,
        "tz": str(window.tz),
        "start": iso(origin),
        "end": iso(window.end_us),
    }
    if which == "costs":
        out["components"] = list(COMPONENTS)
    out["totals"] = figures(total or _ZERO)
    out["buckets"] = buckets
    return out


class _Zero(dict[str, float]):
    def __missing__(self, key: str) -> float:
        return 0


_ZERO: Sums = _Zero()
