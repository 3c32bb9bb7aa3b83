"""Per-component cost of one call, priced from genai-prices (offline, exact Decimals).

Token semantics follow OpenAI's usage object: ``prompt_tokens`` includes cached and
cache-write tokens, ``completion_tokens`` includes reasoning tokens.  Each component is
priced at its own rate; nothing is split pro rata.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any, NamedTuple

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices, calc_unit_price

__all__ = ["GENAI_SOURCE", "Cost", "CostLine", "PriceOverride", "Pricer"]

GENAI_SOURCE = f"genai-prices {genai_prices.__version__}"
_Q12 = Decimal("1e-12")
# A dated snapshot of a model: gpt-4o-mini-2024-07-18, claude-3-5-sonnet-20241022, gpt-4-0613.
_DATED_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")
_ZERO = Decimal(0)
# Private context: exact for any realistic token count / rate, independent of the
# (thread-local, app-mutable) default decimal context.
_CTX = Context(prec=60, rounding=ROUND_HALF_EVEN)

# component -> genai-prices price key (all per 1M tokens)
_PRICE_KEYS = {
    "input": "input_mtok",
    "cached_input": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",  # Anthropic's 1-hour cache writes
    "output": "output_mtok",
    "reasoning": "output_reasoning_mtok",
}


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
    cache_write_1h: Decimal | None = None  # Anthropic's 1-hour cache writes (default: 2x input)

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


class CostLine(NamedTuple):  # (a tuple: made for every priced component of every call)
    component: str  # "input" | "cached_input" | "cache_write" | "cache_write_1h" | "output" | "reasoning"
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


def _pico_per_token(rate: Decimal | None) -> int | None:
    """A rate in USD per million tokens as whole pico-dollars per token, where it is one (rates of
    up to six decimals: every published price). A line's cost is then tokens x this, an integer:
    the same figure ``_line`` works out in Decimals, at a quarter of the time."""
    if rate is None:
        return None
    scaled = rate.scaleb(6, _CTX)
    return int(scaled) if scaled == scaled.to_integral_value(context=_CTX) else None


class _Rates(NamedTuple):
    rates: dict[str, Decimal | None]  # per component, after the fall-backs
    sources: dict[str, str]
    pico: dict[str, int | None]  # per component: ``_pico_per_token`` of its rate


class Pricer:
    """Prices calls.  Model lookups are cached per (provider, model) on the instance."""

    def __init__(self, *, cache_size: int = 4096) -> None:
        self._snapshot: object | None = None
        self._lookup = functools.lru_cache(maxsize=cache_size)(self._find_model)
        # Rates of models with one price at all times, by ((provider, model, override), tier band),
        # and each such model's tier thresholds (sorted; () for none).
        self._static: dict[tuple[tuple[str, str, PriceOverride | None], int], _Rates] = {}
        self._tier_starts: dict[tuple[str, str, PriceOverride | None], tuple[int, ...]] = {}
        self._static_max = cache_size

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
        self._check_snapshot()
        return self._lookup(provider.strip().lower(), model.strip().lower())

    def priced_model(self, provider: str, configured: str, answered: str | None) -> str:
        """The model id a call is priced as: the deployment's configured model, except where the
        upstream answered with a dated snapshot of that same model the price table knows (which
        may be priced differently). An upstream naming another model (a router's substitution, an
        alias) does not move the price; only when the configured model is unknown to the table is
        a known answered id better than pricing the call at $0."""
        if not answered or answered == configured:
            return configured
        base = configured.strip().lower().rsplit("/", 1)[-1]
        got = answered.strip().lower().rsplit("/", 1)[-1]
        known = self.model_info(provider, answered) is not None
        if known and got.startswith(base + "-") and _DATED_SUFFIX.fullmatch(got[len(base) :]):
            return answered
        if known and self.model_info(provider, configured) is None:
            return answered
        return configured

    def _check_snapshot(self) -> None:
        snap = data_snapshot.get_snapshot()
        if snap is not self._snapshot:
            self._lookup.cache_clear()
            self._static.clear()
            self._tier_starts.clear()
            self._snapshot = snap

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
        cache_write_1h_tokens: int = 0,
        override: PriceOverride | None = None,
        at: datetime | float | None = None,  # when the call was made (a datetime or a Unix time)
    ) -> Cost:
        prompt = max(0, int(prompt_tokens or 0))
        completion = max(0, int(completion_tokens or 0))
        cached = max(0, int(cached_tokens or 0))
        cache_write = max(0, int(cache_write_tokens or 0))
        reasoning = max(0, int(reasoning_tokens or 0))
        write_1h = max(0, int(cache_write_1h_tokens or 0))

        rates, src, pico = self._rates(provider, model, override, at, prompt)
        split_reasoning = rates["reasoning"] is not None

        counts = (
            ("input", max(0, prompt - cached - cache_write - write_1h)),
            ("cached_input", cached),
            ("cache_write", cache_write),
            ("cache_write_1h", write_1h),
            ("output", max(0, completion - reasoning) if split_reasoning else completion),
            ("reasoning", reasoning if split_reasoning else 0),
        )
        lines: list[CostLine] = []
        used: set[str] = set()
        total_pico: int | None = 0  # the spend in pico-dollars while every line is whole ones
        for comp, n in counts:
            if n > 0 or comp in ("input", "output"):
                rate, per_token, source = rates[comp], pico[comp], src[comp]
                if rate is None:  # not priced anywhere
                    rate, per_token, source = _ZERO, 0, "unknown"
                if per_token is None or total_pico is None:
                    lines.append(_line(comp, n, rate))
                    total_pico = None
                else:
                    cost = n * per_token
                    lines.append(CostLine(comp, n, rate, Decimal(cost).scaleb(-12, _CTX)))
                    total_pico += cost
                used.add(source)
        if total_pico is not None:
            spend = Decimal(total_pico).scaleb(-12, _CTX)
        else:
            spend = sum((line.cost for line in lines), _ZERO)
        return Cost(spend=spend, breakdown=tuple(lines), price_source=_source(used))

    def _rates(
        self, provider: str, model: str, override: PriceOverride | None, at: datetime | float | None, prompt: int
    ) -> _Rates:
        """Each component's rate and where it came from. Most models have one price at all times:
        their rates are kept per (provider, model, override) and tier band (which of the model's
        tier thresholds the prompt is above), as the writer prices thousands of calls a second;
        dated and time-of-day prices are worked out for each call."""
        self._check_snapshot()
        key = (provider, model, override)
        starts = self._tier_starts.get(key)
        if starts is not None:
            hit = self._static.get((key, bisect_left(starts, prompt)))  # thresholds below the prompt
            if hit is not None:
                return hit
        static = True
        starts = ()
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
                when = (datetime.fromtimestamp(at, UTC) if isinstance(at, int | float) else at) or datetime.now(UTC)
                base = self._genai_rates(info, when, prompt)
                if isinstance(info.prices, ModelPrice):
                    starts = _tier_starts(info.prices)
                else:  # dated or time-of-day prices
                    static = False
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
        if rates["cache_write_1h"] is None and rates["input"] is not None:  # Anthropic's rule: 2x input
            rates["cache_write_1h"], src["cache_write_1h"] = rates["input"] * 2, src["input"]
        got = _Rates(rates, src, {comp: _pico_per_token(rate) for comp, rate in rates.items()})
        if static:
            if len(self._static) >= self._static_max:
                self._static.clear()
                self._tier_starts.clear()
            self._tier_starts[key] = starts
            self._static[(key, bisect_left(starts, prompt))] = got
        return got

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


def _tier_starts(prices: ModelPrice) -> tuple[int, ...]:
    """Every component's tier thresholds: between two of them, every component has one rate
    (genai-prices takes a tier when the prompt is strictly above its start)."""
    starts = {
        int(tier.start)
        for key in _PRICE_KEYS.values()
        if isinstance(price := getattr(prices, key, None), TieredPrices)
        for tier in price.tiers
    }
    return tuple(sorted(starts))


def _source(used: set[str]) -> str:
    if "override" in used:
        return f"override+{GENAI_SOURCE}" if "genai" in used else "override"
    if "genai" in used:
        return GENAI_SOURCE
    return "local" if "local" in used else "unknown"
