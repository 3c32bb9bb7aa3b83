"""The doors' usage parsing, stream accumulators and 1-hour cache-write pricing (issue 12)."""

from __future__ import annotations

from decimal import Decimal

import orjson

from modelmeter.apis.messages import MessagesAccumulator, error_body
from modelmeter.apis.messages import usage_from as messages_usage
from modelmeter.apis.responses import ResponsesAccumulator
from modelmeter.apis.responses import usage_from as responses_usage
from modelmeter.apis.routing import upstream_api
from modelmeter.config import Deployment
from modelmeter.metering.pricing import PriceOverride, Pricer

ANTHROPIC_USAGE = {
    "input_tokens": 10,
    "cache_read_input_tokens": 200,
    "cache_creation_input_tokens": 50,
    "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 20},
    "output_tokens": 5,
}


def test_messages_usage_normalised() -> None:
    u = messages_usage(ANTHROPIC_USAGE)
    assert (u.prompt_tokens, u.cached_tokens, u.cache_write_tokens, u.cache_write_1h_tokens) == (260, 200, 30, 20)
    assert (u.completion_tokens, u.total_tokens, u.reported) == (5, 265, True)
    assert not messages_usage(None).reported


def test_responses_usage() -> None:
    u = responses_usage(
        {
            "input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 40},
            "output_tokens": 9,
            "output_tokens_details": {"reasoning_tokens": 4},
            "total_tokens": 109,
        }
    )
    assert (u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.reasoning_tokens, u.total_tokens) == (
        100,
        40,
        9,
        4,
        109,
    )


def _feed(acc: object, events: list[dict]) -> int:
    return sum(acc.add(orjson.dumps(e)) for e in events)  # type: ignore[attr-defined]


def test_messages_accumulator_merges_start_and_delta_usage() -> None:
    acc = MessagesAccumulator("messages")
    start = {**ANTHROPIC_USAGE, "output_tokens": 1}
    produced = _feed(
        acc,
        [
            {
                "type": "message_start",
                "message": {"id": "msg_1", "model": "claude-x", "role": "assistant", "content": [], "usage": start},
            },
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}},
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
            },
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}},
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
        ],
    )
    assert produced == 4 and not acc.finished()
    _feed(
        acc,
        [
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
            {"type": "message_stop"},
        ],
    )
    assert acc.finished() and acc.id == "msg_1" and acc.model == "claude-x"
    assert acc.usage == messages_usage(ANTHROPIC_USAGE)  # start's input and cache, delta's output
    body = acc.response()
    assert body["content"] == [
        {"type": "text", "text": "Hi there"},
        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
    ]
    assert body["stop_reason"] == "end_turn" and body["usage"]["output_tokens"] == 5


def test_responses_accumulator_final_events() -> None:
    for final in ("response.completed", "response.incomplete", "response.failed"):
        acc = ResponsesAccumulator("responses")
        usage = {"input_tokens": 3, "output_tokens": 2}
        n = _feed(
            acc,
            [
                {"type": "response.created", "response": {"id": "resp_1", "model": "m", "status": "in_progress"}},
                {"type": "response.output_text.delta", "delta": "ab"},
                {"type": final, "response": {"id": "resp_1", "model": "m", "status": "x", "usage": usage}},
            ],
        )
        assert n == 1 and acc.finished() and acc.usage.prompt_tokens == 3 and acc.usage.completion_tokens == 2
        assert acc.response()["status"] == "x" and acc.all_text() == "ab"


def test_anthropic_error_shape() -> None:
    assert error_body("bad", "server_error", None, "x") == {
        "type": "error",
        "error": {"type": "api_error", "message": "bad"},
    }


def test_upstream_api() -> None:
    assert upstream_api(Deployment("a", "m", provider="anthropic", api_base="http://x")) == "messages"
    assert upstream_api(Deployment("a", "m", provider="anthropic", api_base="http://x", api="chat")) == "chat"
    assert upstream_api(Deployment("a", "m", api_base="http://x")) == "chat"
    assert upstream_api(Deployment("a", "m", api_base="http://x", api="responses")) == "responses"


def test_one_hour_writes_priced_apart_and_add_up() -> None:
    p = Pricer()
    cost = p.cost(
        provider="anthropic",
        model="claude-sonnet-4-5",
        prompt_tokens=260,
        completion_tokens=5,
        cached_tokens=200,
        cache_write_tokens=30,
        cache_write_1h_tokens=20,
    )
    lines = {c.component: c for c in cost.breakdown}
    assert lines["input"].tokens == 10 and lines["cache_write_1h"].tokens == 20
    assert lines["cache_write_1h"].usd_per_million == 2 * lines["input"].usd_per_million  # genai-prices: 6 vs 3
    assert cost.spend == sum(c.cost for c in cost.breakdown)
    # No 1 h price anywhere: Anthropic's rule, twice the input rate.
    ov = PriceOverride.from_mapping({"input": 4, "output": 8})
    cost = p.cost(
        provider="acme",
        model="nothing-known",
        prompt_tokens=100,
        completion_tokens=0,
        cache_write_1h_tokens=100,
        override=ov,
    )
    assert cost.spend == Decimal(100 * 8) / 10**6
