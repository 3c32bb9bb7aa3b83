"""Per-component cost of one call, priced from genai-prices (offline, exact Decimals).

Token semantics follow OpenAI's usage object: ``prompt_tokens`` includes cached and
cache-write tokens, ``completion_tokens`` includes reasoning tokens.  Each component is
priced at its own rate; nothing is split pro rata.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ModelInfo, TieredPrices, calc_unit_price

__all__ = ["GENAI_SOURCE", "Cost", "CostLine", "PriceOverride", "Pricer", "decimal_to_json"]

GENAI_SOURCE = f"genai-prices {genai_prices.__version__}"
_Q12 = Decimal("1e-12")
_ZERO = Decimal(0)
# Private context: exact for any realistic token count / rate, independent of the
# (thread-local, app-mutable) default decimal context.
_CTX = Context(prec=60, rounding=ROUND_HALF_EVEN)

# component -> genai-prices price key (all per 1M tokens)
_PRICE_KEYS = {
    "input": "input_mtok",
    "cached_input": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "output": "output_mtok",
    "reasoning": "output_reasoning_mtok",
}


def decimal_to_json(d: Decimal) -> float:
    """Float of ``d`` rounded to 12 decimals (1e-12 USD), for JSON payloads."""
    return float(d.quantize(_Q12, rounding=ROUND_HALF_EVEN, context=_CTX))


def _to_decimal(key: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"price override {key!r}: expected a number, got {value!r}")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"price override {key!r}: {value!r} is not a number") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"price override {key!r}: {value!r} must be a finite number >= 0")
    return d


@dataclass(frozen=True)
class PriceOverride:
    """Prices in USD per million tokens from a deployment's config; ``None`` = not overridden."""

    input: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    output: Decimal | None = None
    reasoning: Decimal | None = None

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> PriceOverride:
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in m if k not in allowed)
        if unknown:
            raise ValueError(
                f"unknown price override key(s) {', '.join(map(repr, unknown))}; "
                f"allowed keys: {', '.join(allowed)} (USD per million tokens)"
            )
        return cls(**{k: _to_decimal(k, v) for k, v in m.items()})


@dataclass(frozen=True)
class CostLine:
    component: str  # "input" | "cached_input" | "cache_write" | "output" | "reasoning"
    tokens: int
    usd_per_million: Decimal
    cost: Decimal


@dataclass(frozen=True)
class Cost:
    spend: Decimal  # == sum(line.cost for line in breakdown), exactly
    breakdown: tuple[CostLine, ...]
    price_source: str  # GENAI_SOURCE | "override" | "override+"+GENAI_SOURCE | "local" | "unknown"


def _line(component: str, tokens: int, rate: Decimal) -> CostLine:
    cost = _CTX.multiply(Decimal(tokens), rate).scaleb(-6, _CTX)
    return CostLine(component, tokens, rate, cost.quantize(_Q12, ROUND_HALF_EVEN, _CTX))


class Pricer:
    """Prices calls.  Model lookups are cached per (provider, model) on the instance."""

    def __init__(self, *, cache_size: int = 4096) -> None:
        self._snapshot: object | None = None
        self._lookup = functools.lru_cache(maxsize=cache_size)(self._find_model)

    # -- lookup ---------------------------------------------------------------------------
    @staticmethod
    def _find_model(provider: str, model: str) -> ModelInfo | None:
        """genai-prices lookup: given provider, then ``prefix/model`` the way genai-prices
        resolves LiteLLM refs, then by model name alone.  ``None`` if nothing matches."""
        snap = data_snapshot.get_snapshot()
        attempts: list[str | None] = []
        if provider:
            attempts.append(provider)
        if "/" in model:
            attempts.append("litellm")  # genai-prices splits "openai/gpt-4o" itself
        attempts.append(None)
        for provider_id in attempts:
            try:
                return snap.find_provider_model(model, None, provider_id, None)[1]
            except LookupError:
                continue
        return None

    def model_info(self, provider: str, model: str) -> ModelInfo | None:
        """Cached lookup; the cache is dropped if genai-prices' snapshot is replaced."""
        snap = data_snapshot.get_snapshot()
        if snap is not self._snapshot:
            self._lookup.cache_clear()
            self._snapshot = snap
        return self._lookup(provider.strip().lower(), model.strip().lower())

    # -- pricing --------------------------------------------------------------------------
    def cost(
        self,
        *,
        provider: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        override: PriceOverride | None = None,
        at: datetime | None = None,
    ) -> Cost:
        prompt = max(0, int(prompt_tokens or 0))
        completion = max(0, int(completion_tokens or 0))
        cached = max(0, int(cached_tokens or 0))
        cache_write = max(0, int(cache_write_tokens or 0))
        reasoning = max(0, int(reasoning_tokens or 0))

        # base rates: component -> (rate or None if the data has no such price, source)
        base: dict[str, Decimal | None]
        if provider.strip().lower() == "local":
            base_src = "local"
            base = dict.fromkeys(_PRICE_KEYS, _ZERO)
            base["reasoning"] = None
        else:
            info = self.model_info(provider, model)
            if info is None:
                base_src, base = "unknown", dict.fromkeys(_PRICE_KEYS)
            else:
                base_src = "genai"
                base = self._genai_rates(info, at or datetime.now(tz=UTC), prompt)

        ov = override or PriceOverride()
        src: dict[str, str] = {}
        rates: dict[str, Decimal | None] = {}
        for comp in _PRICE_KEYS:
            o = getattr(ov, comp)
            rates[comp], src[comp] = (o, "override") if o is not None else (base[comp], base_src)
        # Missing cache prices fall back to the (effective) input rate, as genai-prices does
        # when a model has no cache price.  Reasoning without its own price stays in output.
        for comp in ("cached_input", "cache_write"):
            if rates[comp] is None:
                rates[comp], src[comp] = rates["input"], src["input"]
        split_reasoning = rates["reasoning"] is not None

        counts = {
            "input": max(0, prompt - cached - cache_write),
            "cached_input": cached,
            "cache_write": cache_write,
            "output": max(0, completion - reasoning) if split_reasoning else completion,
            "reasoning": reasoning if split_reasoning else 0,
        }
        lines: list[CostLine] = []
        used: set[str] = set()
        for comp, n in counts.items():
            if comp in ("input", "output") or n > 0:
                rate = rates[comp]
                if rate is None:  # not priced anywhere
                    rate, src[comp] = _ZERO, "unknown"
                lines.append(_line(comp, n, rate))
                used.add(src[comp])
        spend = sum((line.cost for line in lines), _ZERO)
        return Cost(spend=spend, breakdown=tuple(lines), price_source=_source(used))

    @staticmethod
    def _genai_rates(info: ModelInfo, at: datetime, prompt: int) -> dict[str, Decimal | None]:
        prices = info.get_prices(at)
        out: dict[str, Decimal | None] = {}
        for comp, key in _PRICE_KEYS.items():
            price = getattr(prices, key, None)
            if price is None:
                out[comp] = None
            elif isinstance(price, TieredPrices):
                # genai-prices' own tier selection: the tier is chosen by total input tokens
                # (prompt incl. cache), and applies to every token of that component.
                out[comp] = calc_unit_price(price, 1, prompt, 1)
            else:
                out[comp] = price
        return out


def _source(used: set[str]) -> str:
    if "override" in used:
        return f"override+{GENAI_SOURCE}" if "genai" in used else "override"
    if "genai" in used:
        return GENAI_SOURCE
    return "local" if "local" in used else "unknown"
