"""Pricer against the real genai-prices 0.2.3 data (offline)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import Usage, calc_price
from genai_prices.types import calc_unit_price
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmeter.metering.pricing import (
    GENAI_SOURCE,
    Cost,
    CostLine,
    PriceOverride,
    Pricer,
)

D = Decimal
AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pricer() -> Pricer:
    return Pricer()


def lines(cost: Cost) -> dict[str, CostLine]:
    return {line.component: line for line in cost.breakdown}


def assert_adds_up(cost: Cost) -> None:
    assert cost.spend == sum((line.cost for line in cost.breakdown), D(0))
    for line in cost.breakdown:
        assert line.cost == (line.tokens * line.usd_per_million / D(10) ** 6).quantize(D("1e-12"))
        assert line.cost.as_tuple().exponent == -12


def test_source_string_has_installed_version() -> None:
    assert GENAI_SOURCE == f"genai-prices {genai_prices.__version__}" == "genai-prices 0.2.3"


def test_gpt_4o_mini_components(pricer: Pricer) -> None:
    cost = pricer.cost(
        provider="openai",
        model="gpt-4o-mini",
        prompt_tokens=1000,
        completion_tokens=500,
        cached_tokens=200,
        at=AT,
    )
    assert [(ln.component, ln.tokens, ln.usd_per_million) for ln in cost.breakdown] == [
        ("input", 800, D("0.15")),
        ("cached_input", 200, D("0.075")),
        ("output", 500, D("0.6")),
    ]
    by = lines(cost)
    assert by["input"].cost == D("0.000120000000")
    assert by["cached_input"].cost == D("0.000015000000")
    assert by["output"].cost == D("0.000300000000")
    assert cost.spend == D("0.000435")
    assert cost.price_source == GENAI_SOURCE
    assert_adds_up(cost)


@pytest.mark.parametrize(
    ("provider", "model", "usage"),
    [
        ("openai", "gpt-4o-mini", dict(prompt=1000, completion=500, cached=200)),
        ("openai", "o3", dict(prompt=5000, completion=3000, cached=1000, reasoning=2500)),
        ("anthropic", "claude-sonnet-4-5", dict(prompt=150_000, completion=700, cached=90_000, write=20_000)),
        ("anthropic", "claude-sonnet-4-5", dict(prompt=250_000, completion=700, cached=90_000, write=20_000)),
        ("perplexity", "sonar-deep-research", dict(prompt=1234, completion=5678, reasoning=4000)),
        ("deepseek", "deepseek-chat", dict(prompt=777, completion=333, cached=111)),
    ],
)
def test_total_matches_genai_prices_calc_price(
    pricer: Pricer, provider: str, model: str, usage: dict[str, int]
) -> None:
    """Per-component pricing adds up to the library's own total (which is unrounded)."""
    cost = pricer.cost(
        provider=provider,
        model=model,
        prompt_tokens=usage["prompt"],
        completion_tokens=usage["completion"],
        cached_tokens=usage.get("cached", 0),
        cache_write_tokens=usage.get("write", 0),
        reasoning_tokens=usage.get("reasoning", 0),
        at=AT,
    )
    ref = calc_price(
        Usage(
            input_tokens=usage["prompt"],
            cache_read_tokens=usage.get("cached", 0),
            cache_write_tokens=usage.get("write", 0),
            output_tokens=usage["completion"],
            output_reasoning_tokens=usage.get("reasoning", 0),
        ),
        model,
        provider_id=provider,
        genai_request_timestamp=AT,
    )
    assert cost.spend == ref.total_price.quantize(D("1e-12"))
    assert cost.price_source == GENAI_SOURCE
    assert_adds_up(cost)


def test_tiered_prices_switch_on_total_prompt_tokens(pricer: Pricer) -> None:
    def rates(prompt: int) -> dict[str, Decimal]:
        c = pricer.cost(
            provider="anthropic",
            model="claude-sonnet-4-5-20250929",
            prompt_tokens=prompt,
            completion_tokens=10,
            cached_tokens=1000,
            cache_write_tokens=1000,
            at=AT,
        )
        return {ln.component: ln.usd_per_million for ln in c.breakdown}

    base = {"input": D(3), "cached_input": D("0.3"), "cache_write": D("3.75"), "output": D(15)}
    high = {"input": D(6), "cached_input": D("0.6"), "cache_write": D("7.5"), "output": D("22.5")}
    assert rates(150_000) == base
    assert rates(200_000) == base  # genai-prices: the tier applies strictly above its start
    assert rates(200_001) == high
    # Rates are kept per tier band (pricing._tier_starts): each call still gets its own band's.
    assert rates(199_999) == base
    assert rates(900_000) == high
    assert rates(0) == base


def test_tiered_rates_kept_per_band_equal_genai_prices_at_every_threshold() -> None:
    """One pricer, prompts on both sides of each threshold in a shuffled order: each call's rates
    are genai-prices' own for that prompt, whatever was priced before it."""
    p = Pricer()
    info = p.model_info("anthropic", "claude-sonnet-4-5")
    assert info is not None
    prompts = [0, 1, 199_999, 200_000, 200_001, 1_000_000] * 3
    random.Random(5).shuffle(prompts)
    for prompt in prompts:
        cost = p.cost(provider="anthropic", model="claude-sonnet-4-5", prompt_tokens=prompt, completion_tokens=1, at=AT)
        prices = info.get_prices(AT)
        assert {ln.component: ln.usd_per_million for ln in cost.breakdown} == {
            "input": calc_unit_price(prices.input_mtok, 1, prompt, 1),
            "output": calc_unit_price(prices.output_mtok, 1, prompt, 1),
        }


def test_reasoning_priced_apart_when_data_has_a_reasoning_price(pricer: Pricer) -> None:
    cost = pricer.cost(
        provider="perplexity",
        model="sonar-deep-research",
        prompt_tokens=100,
        completion_tokens=1000,
        reasoning_tokens=600,
        at=AT,
    )
    by = lines(cost)
    assert (by["output"].tokens, by["output"].usd_per_million) == (400, D(8))
    assert (by["reasoning"].tokens, by["reasoning"].usd_per_million) == (600, D(3))
    assert cost.spend == D("0.0002") + D("0.0032") + D("0.0018")
    assert_adds_up(cost)


def test_reasoning_stays_in_output_without_a_reasoning_price(pricer: Pricer) -> None:
    cost = pricer.cost(
        provider="openai", model="o3", prompt_tokens=100, completion_tokens=1000, reasoning_tokens=600, at=AT
    )
    assert [ln.component for ln in cost.breakdown] == ["input", "output"]
    assert (lines(cost)["output"].tokens, lines(cost)["output"].usd_per_million) == (1000, D(8))


def test_at_selects_dated_prices(pricer: Pricer) -> None:
    def spend(at: datetime | None) -> Decimal:
        return pricer.cost(provider="openai", model="o3", prompt_tokens=1_000_000, completion_tokens=0, at=at).spend

    assert spend(datetime(2025, 6, 1, tzinfo=UTC)) == D(10)
    assert spend(datetime(2025, 6, 11, tzinfo=UTC)) == D(2)
    assert spend(None) == D(2)  # default: now


def test_cache_write_line_and_always_present_input_output(pricer: Pricer) -> None:
    cost = pricer.cost(
        provider="anthropic",
        model="claude-sonnet-4-5",
        prompt_tokens=1000,
        completion_tokens=0,
        cache_write_tokens=1000,
        at=AT,
    )
    assert [(ln.component, ln.tokens) for ln in cost.breakdown] == [
        ("input", 0),
        ("cache_write", 1000),
        ("output", 0),
    ]
    assert cost.spend == D("0.00375")


def test_cache_tokens_fall_back_to_input_rate_without_cache_price(pricer: Pricer) -> None:
    # gpt-4o-mini has no cache-write price: those tokens are input tokens to genai-prices too
    cost = pricer.cost(
        provider="openai", model="gpt-4o-mini", prompt_tokens=100, completion_tokens=0, cache_write_tokens=40, at=AT
    )
    assert lines(cost)["cache_write"].usd_per_million == D("0.15")


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-mini-2024-07-18"),
        ("openai", "GPT-4o-mini"),
        ("openai", "gpt-4o-mini-20240718"),
        ("openai", "openai/gpt-4o-mini"),
        ("vllm", "gpt-4o-mini"),  # unknown provider id: falls back to matching the model
        ("", "gpt-4o-mini"),
        ("my-gateway", "openai/gpt-4o-mini"),
        ("azure", "gpt-4o-mini"),
    ],
)
def test_model_ref_variants(pricer: Pricer, provider: str, model: str) -> None:
    cost = pricer.cost(provider=provider, model=model, prompt_tokens=1000, completion_tokens=0)
    assert cost.price_source == GENAI_SOURCE
    assert lines(cost)["input"].usd_per_million == D("0.15")


def test_unknown_model(pricer: Pricer) -> None:
    cost = pricer.cost(
        provider="nowhere",
        model="definitely-not-a-model",
        prompt_tokens=10,
        completion_tokens=5,
        cached_tokens=3,
        reasoning_tokens=2,
    )
    assert cost.price_source == "unknown"
    assert cost.spend == 0
    assert [(ln.component, ln.tokens, ln.usd_per_million) for ln in cost.breakdown] == [
        ("input", 7, 0),
        ("cached_input", 3, 0),
        ("output", 5, 0),
    ]


def test_local_is_free(pricer: Pricer) -> None:
    cost = pricer.cost(
        provider="local",
        model="gpt-4o-mini",
        prompt_tokens=10,
        completion_tokens=5,
        cached_tokens=4,
        reasoning_tokens=1,
    )
    assert cost.price_source == "local"
    assert cost.spend == 0
    assert [ln.component for ln in cost.breakdown] == ["input", "cached_input", "output"]


def test_local_with_override(pricer: Pricer) -> None:
    ov = PriceOverride(input=D(1), output=D(2))
    cost = pricer.cost(
        provider="local", model="smollm2", prompt_tokens=1_000_000, completion_tokens=1_000_000, override=ov
    )
    assert (cost.spend, cost.price_source) == (D(3), "override")


def test_full_override(pricer: Pricer) -> None:
    ov = PriceOverride.from_mapping({"input": 1, "cached_input": 0.5, "output": "4"})
    cost = pricer.cost(
        provider="openai",
        model="gpt-4o-mini",
        prompt_tokens=1000,
        completion_tokens=500,
        cached_tokens=200,
        override=ov,
        at=AT,
    )
    assert [(ln.component, ln.usd_per_million) for ln in cost.breakdown] == [
        ("input", D(1)),
        ("cached_input", D("0.5")),
        ("output", D(4)),
    ]
    assert cost.price_source == "override"
    assert cost.spend == D("0.0008") + D("0.0001") + D("0.002")
    assert_adds_up(cost)


def test_partial_override_mixes_with_genai_prices(pricer: Pricer) -> None:
    cost = pricer.cost(
        provider="openai",
        model="gpt-4o-mini",
        prompt_tokens=1000,
        completion_tokens=500,
        cached_tokens=200,
        override=PriceOverride(input=D(1)),
        at=AT,
    )
    assert [(ln.component, ln.usd_per_million) for ln in cost.breakdown] == [
        ("input", D(1)),
        ("cached_input", D("0.075")),
        ("output", D("0.6")),
    ]
    assert cost.price_source == f"override+{GENAI_SOURCE}"
    # an override that names no used component leaves the source alone
    empty = pricer.cost(
        provider="openai",
        model="gpt-4o-mini",
        prompt_tokens=1,
        completion_tokens=1,
        override=PriceOverride(reasoning=None),
    )
    assert empty.price_source == GENAI_SOURCE


def test_override_for_unknown_model(pricer: Pricer) -> None:
    ov = PriceOverride(input=D("0.2"), output=D("0.8"))
    cost = pricer.cost(
        provider="vllm",
        model="my-finetune",
        prompt_tokens=1000,
        completion_tokens=100,
        cached_tokens=500,
        reasoning_tokens=50,
        override=ov,
    )
    by = lines(cost)
    assert by["cached_input"].usd_per_million == D("0.2")  # no cache price anywhere: input rate
    assert (by["output"].tokens, by["output"].usd_per_million) == (100, D("0.8"))
    assert "reasoning" not in by
    assert cost.price_source == "override"


def test_override_reasoning_price_splits_reasoning(pricer: Pricer) -> None:
    cost = pricer.cost(
        provider="openai",
        model="o3",
        prompt_tokens=0,
        completion_tokens=1000,
        reasoning_tokens=600,
        override=PriceOverride(reasoning=D(1)),
        at=AT,
    )
    by = lines(cost)
    assert (by["output"].tokens, by["reasoning"].tokens) == (400, 600)
    assert cost.price_source == f"override+{GENAI_SOURCE}"


def test_from_mapping_conversions_and_errors() -> None:
    ov = PriceOverride.from_mapping(
        {"input": 0.1, "cached_input": "0.025", "cache_write": 2, "output": D("0.4"), "reasoning": None}
    )
    assert ov == PriceOverride(D("0.1"), D("0.025"), D(2), D("0.4"), None)
    assert PriceOverride.from_mapping({}) == PriceOverride()
    with pytest.raises(ValueError, match=r"unknown price override key\(s\) 'cache_read'.*allowed"):
        PriceOverride.from_mapping({"input": 1, "cache_read": 1})
    for bad in ("abc", -1, float("nan"), True, [1]):
        with pytest.raises(ValueError, match="'output'"):
            PriceOverride.from_mapping({"output": bad})


def test_rounding_is_half_even_at_1e_12(pricer: Pricer) -> None:
    ov = PriceOverride(input=D("0.0000005"), output=D("0.0000005"))  # 5e-13 USD per token
    cost = pricer.cost(provider="x", model="y", prompt_tokens=1, completion_tokens=3, override=ov)
    by = lines(cost)
    assert by["input"].cost == D("0E-12")  # 0.5e-12 -> 0 (even)
    assert by["output"].cost == D("2E-12")  # 1.5e-12 -> 2e-12 (even)
    assert cost.spend == D("2E-12")
    assert_adds_up(cost)


def test_inconsistent_usage_does_not_raise(pricer: Pricer) -> None:
    cost = pricer.cost(
        provider="openai", model="gpt-4o-mini", prompt_tokens=10, completion_tokens=-5, cached_tokens=50, at=AT
    )
    assert [(ln.component, ln.tokens) for ln in cost.breakdown] == [
        ("input", 0),
        ("cached_input", 50),
        ("output", 0),
    ]


def test_lookups_are_cached() -> None:
    p = Pricer()
    for _ in range(3):
        p.cost(provider="openai", model="gpt-4o-mini", prompt_tokens=1, completion_tokens=1)
        p.cost(provider="x", model="unknown-model", prompt_tokens=1, completion_tokens=1)
    info = p._lookup.cache_info()
    # One lookup each: after it, the rates of a model with one price at all times are kept.
    assert (info.misses, info.hits) == (2, 0)
    assert p.cost(provider="openai", model="gpt-4o-mini", prompt_tokens=1_000_000, completion_tokens=0).spend == D(
        "0.15"
    )


def test_dated_prices_are_not_kept_across_dates() -> None:
    """claude-opus-4-6's price changed on 2026-03-13 (long-context tier before, one price after):
    the same pricer prices each call at its own date, in either order."""
    p = Pricer()
    before, after = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    for at in (before, after, before):
        cost = p.cost(
            provider="anthropic", model="claude-opus-4-6", prompt_tokens=300_000, completion_tokens=1_000, at=at
        )
        rates = {line.component: line.usd_per_million for line in cost.breakdown}
        assert rates == ({"input": D(10), "output": D("37.5")} if at == before else {"input": D(5), "output": D(25)})


_RATES = st.one_of(
    # whole pico-dollars a token (every published price): the integer path
    st.integers(0, 10**9).map(lambda n: D(n).scaleb(-6)),
    # finer than that: the Decimal path, alone or mixed with the other in one call
    st.integers(0, 10**12).map(lambda n: D(n).scaleb(-9)),
)


@settings(max_examples=300, deadline=None)
@given(
    rates=st.tuples(_RATES, _RATES, _RATES, _RATES, _RATES),
    tokens=st.tuples(*[st.integers(0, 10**8)] * 5),
)
def test_whole_pico_rates_give_the_decimal_figures_to_the_digit(
    rates: tuple[Decimal, ...], tokens: tuple[int, ...]
) -> None:
    """A rate of whole pico-dollars a token is priced in integers (``pricing._pico_per_token``):
    each line and the spend equal the Decimal product rounded at 1e-12, exponent and all."""
    inp, cached, write, out, reasoning = rates
    ov = PriceOverride(input=inp, cached_input=cached, cache_write=write, output=out, reasoning=reasoning)
    prompt, n_cached, n_write, completion, n_reasoning = tokens
    cost = Pricer().cost(
        provider="x",
        model="y",
        prompt_tokens=prompt + n_cached + n_write,
        completion_tokens=completion + n_reasoning,
        cached_tokens=n_cached,
        cache_write_tokens=n_write,
        reasoning_tokens=n_reasoning,
        override=ov,
    )
    assert_adds_up(cost)
    assert cost.spend.as_tuple().exponent == -12
    expected = {"input": prompt, "output": completion, "cached_input": n_cached}
    expected |= {"cache_write": n_write, "reasoning": n_reasoning}
    assert {ln.component: ln.tokens for ln in cost.breakdown} == {
        c: n for c, n in expected.items() if n > 0 or c in ("input", "output")
    }
