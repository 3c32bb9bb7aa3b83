"""Which model id a call is priced as (issue 11 item 1): the configured model, a dated snapshot
of it, never the id an upstream substitutes."""

from __future__ import annotations

import pytest

from modelmeter.config import Deployment
from modelmeter.metering.pricing import GENAI_SOURCE, Pricer
from modelmeter.metering.record import CallRecord, finish
from modelmeter.metering.usage import Usage


@pytest.mark.parametrize(
    ("configured", "answered", "priced"),
    [
        ("gpt-4o-mini", "gpt-4o", "gpt-4o-mini"),  # another model: the configured one's price
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18"),  # its dated snapshot
        ("gpt-4", "gpt-4-0613", "gpt-4-0613"),
        ("claude-3-5-sonnet", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022"),
        ("gpt-4o", "gpt-4o-mini", "gpt-4o"),  # a prefix is not a snapshot
        ("gpt-4o-mini", "no-such-model-xyz", "gpt-4o-mini"),  # unknown: never $0 by it
        ("gpt-4o-mini", "gpt-4o-mini-2099-01-01-x", "gpt-4o-mini"),
        ("gpt-4o-mini", None, "gpt-4o-mini"),
        ("my-house-alias", "gpt-4o", "gpt-4o"),  # the table knows only the answer: better than $0
        ("my-house-alias", "other-house-model", "my-house-alias"),
    ],
)
def test_priced_model(configured: str, answered: str | None, priced: str) -> None:
    assert Pricer().priced_model("openai", configured, answered) == priced


def test_the_record_is_priced_as_the_configured_model_and_says_so() -> None:
    dep = Deployment(name="mini", model="gpt-4o-mini", provider="openai")
    rec = CallRecord(
        id="r1",
        deployment=dep,
        model="mini",
        call_type="chat",
        start=1.75e9,
        model_id="gpt-4o",
        usage=Usage(1000, 500, 1500, reported=True),
    )
    row = finish(rec, Pricer())
    expected = Pricer().cost(
        provider="openai", model="gpt-4o-mini", prompt_tokens=1000, completion_tokens=500, at=1.75e9
    )
    assert row["priced_model"] == "gpt-4o-mini" and row["model_id"] == "gpt-4o"
    assert row["spend_pusd"] == int(expected.spend * 10**12) > 0
    assert row["price_source"] == GENAI_SOURCE
